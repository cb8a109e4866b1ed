"""Layer 5, Refinement: KPIs into decisions (anomalies, A/B verdicts, tuning, evolution).

Modules: ``core`` (the Rust core through WASM: Welch's test, effect sizes,
sample size, the A/B rule, anomaly rules, trend, the evolution trigger),
``buffers`` (bounded per-version KPI windows), ``subscription`` (the
long-lived StreamKpis subscription to layer 4), ``clustering`` (k-means in
JAX), ``surrogate`` (Gaussian-process tuning in JAX), ``experiments``
(A/B experiment store), ``patterns`` and ``trigger`` (the analyses behind
DetectPatterns and ShouldEvolve), ``service`` (gRPC), ``main`` (the server
entry point).
"""
