"""Layer 3, Validation: the gate in front of execution.

Modules: ``policy`` (the editable policy file), ``core`` (the Rust core
through WASM: WASM parsing and module rules, plan dependency checks,
SHA-256), ``plan_rules`` (plan policy rules), ``results`` (statuses, risk,
recommendations), ``verdicts`` (the verdict store), ``service`` (gRPC),
``main`` (the server entry point).
"""
