"""Layer 8, Resources: the host's finite pool, leases on it, cost and a job queue.

Modules: ``artifacts`` (the layer's files), ``config`` (rates and grant
limits from ``resources.json``), ``inventory`` (the host probe: cores,
memory, storage, accelerators from JAX and ``nvidia-smi``), ``core`` (the
Rust core through WASM: allocation solver and cost), ``pool`` (allocations
and leases with expiry), ``jobs`` (the priority and budget queue),
``messages`` (proto conversions), ``service`` (gRPC), ``main`` (the server
entry point), ``client`` (what a layer that runs jobs calls before a run).
"""
