"""Layer 4 (Execution): wasmtime sandbox, task scheduler, hot-swap registry, KPI fan-out.

Modules: ``abi`` (guest ABI byte formats), ``workload`` (kernel input and
genome), ``sandbox`` (validation, compile cache, limited runs), ``scheduler``
(priorities, retries, dead letters), ``registry`` (versions, hot swap,
rollback), ``kpi`` (subscriber fan-out), ``runner`` (glue), ``artifacts``
(where the kernel .wasm is).
"""
