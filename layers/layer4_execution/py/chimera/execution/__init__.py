"""Layer 4 (Execution): wasmtime sandbox, task scheduler, hot-swap registry, KPI fan-out.

Core modules: ``abi`` (guest ABI byte formats), ``workload`` (kernel input and
genome), ``sandbox`` (validation, compile cache, limited runs), ``scheduler``
(priorities, retries, dead letters), ``deployments`` (named slots: versions,
hot swap, rollback), ``runner`` (a task's payload, executor and retry
verdict), ``kpi`` (subscriber fan-out), ``artifacts`` (where the kernel .wasm
is).

Service modules (target ``:execution_service``): ``service`` (the
ExecutionService servicer), ``gate`` (the 3->4 module gate), ``convert``
(contract mappings), ``main`` (entry point and ``build_server``).
"""
