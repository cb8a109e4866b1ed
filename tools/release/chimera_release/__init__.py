"""Chimera release tooling: build-graph queries for release engineering."""
