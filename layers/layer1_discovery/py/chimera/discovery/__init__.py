"""Layer 1, Discovery: real host probes, window statistics and threshold alerts.

Modules: ``probes`` (psutil measurements), ``core`` (the Rust core through
WASM: window statistics, threshold evaluation), ``windows`` (per-series
sliding windows), ``config`` (thresholds file), ``service`` (the gRPC
servicer and background collection), ``main`` (the server entry point).
"""
