"""Layer 7, Genetics: breeds, stores and deploys agent genomes.

Modules: ``core`` (the Rust core through WASM: genome checks, diversity, the
default fitness formula), ``breeding`` (one GA generation on the JAX engine, chimera.optim.ga),
``schema`` and ``backends`` (the genome store's migrations; SQLite and
PostgreSQL), ``store`` (version history, lineage, deployments, bandit
state), ``generations`` (RunGeneration's pipeline), ``service`` (gRPC),
``main`` (the server entry point).
"""
