"""Layer 4 (Execution): wasmtime sandbox, task scheduler, hot-swap registry, KPI fan-out.

Core modules: ``abi`` (guest ABI byte formats), ``workload`` (kernel input and
genome), ``sandbox`` (validation, compile cache, limited runs), ``scheduler``
(priorities, retries, dead letters), ``registry`` (versions, hot swap,
rollback), ``deployments`` (named slots for the service), ``kpi`` (subscriber
fan-out), ``runner`` (glue), ``artifacts`` (where the kernel .wasm is).

Service modules (target ``:execution_service``): ``service`` (the
ExecutionService servicer), ``gate`` (the 3->4 module gate), ``convert``
(contract mappings), ``server`` (entry point and ``ExecutionServer``).
"""
