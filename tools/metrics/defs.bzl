"""Public API of Chimera's build metrics.

    bazel build //... \\
        --aspects=//tools/metrics:defs.bzl%metrics_aspect --output_groups=+metrics

writes bazel-bin/<package>/_metrics/<target>.json for every requested target:
its label, rule kind, layer ("layerN" for layers/layerN_name/..., else the
top directory), direct deps, and each default output with its size in bytes as
measured from the built file. tools/metrics/report.sh runs that build with a
profile and the BEP and turns the three into build_metrics.json and a dashboard.

Providers (see private/providers.bzl): TargetMetricsInfo.
"""

load("//tools/metrics/private:aspect.bzl", _metrics_aspect = "metrics_aspect")
load("//tools/metrics/private:layer.bzl", _layer_of = "layer_of")
load("//tools/metrics/private:providers.bzl", _TargetMetricsInfo = "TargetMetricsInfo")

TargetMetricsInfo = _TargetMetricsInfo

metrics_aspect = _metrics_aspect
layer_of = _layer_of
