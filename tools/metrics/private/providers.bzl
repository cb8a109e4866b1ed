"""Providers of the build-metrics aspect."""

TargetMetricsInfo = provider(
    doc = "Build metrics of one target, as recorded by metrics_aspect.",
    fields = {
        "json": "File: the target's metrics JSON (label, kind, layer, deps, outputs with sizes in bytes); None for an analysis test, which builds nothing.",
        "layer": "string: \"layerN\" for layers/layerN_*/..., else the package's top directory.",
    },
)
