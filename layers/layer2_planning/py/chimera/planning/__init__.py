"""Layer 2, Planning: goals into scheduled task graphs with risks and sizing.

Modules: ``templates`` (deterministic goal decomposition), ``capacity``
(host capacity from layer-1 observations), ``core`` (the Rust core through
WASM: graph checks, critical path, timeline, sizing, risk scores), ``risks``
(risk rules), ``planner`` (the pipeline), ``store``, ``service`` (gRPC),
``main`` (the server entry point).
"""
