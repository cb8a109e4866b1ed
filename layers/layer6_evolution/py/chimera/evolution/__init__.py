"""Layer 6, Evolution: the strategy portfolio as a gRPC service (see service.py)."""
