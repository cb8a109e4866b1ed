"""The bin-packing kernel as layer 4 runs it (WASM, fuel-metered sandbox).

- First Fit and Best Fit, run by the kernel, reproduce the published figures
  on both published sets (reading them here is a check of the kernel, not a
  choice: nothing is selected or tuned);
- the JAX twin gives exactly the kernel's bin count on random genomes and
  instances of both generators;
- bad params and input are statuses naming the field, never a crash.
"""

import numpy as np
import pytest

from chimera.binpacking import genome, published, twin
from chimera.binpacking.instances import generate
from chimera.execution.artifacts import binpacking_wasm_bytes
from chimera.execution.sandbox import ExecStatus, Sandbox
from chimera.wasm.guest import encode_f64s


@pytest.fixture(scope="module")
def kernel():
    with Sandbox() as sandbox:
        yield sandbox, sandbox.compile(binpacking_wasm_bytes())


def run(kernel, params, instance):
    sandbox, module = kernel
    result = sandbox.run(module, list(params), instance.encode())
    assert result.ok, result.message
    return result


def excess(kernel, params, instances):
    metrics = [run(kernel, params, inst).output.metrics for inst in instances]
    bins = sum(m["bins_used"] for m in metrics)
    bound = sum(m["l1_bound"] for m in metrics)
    return 100.0 * (bins - bound) / bound


@pytest.mark.parametrize("set_name", ["or3", "weibull_5k"])
def test_first_fit_and_best_fit_reproduce_the_published_figures(kernel, set_name):
    figures = published.figures()["sets"][set_name]
    instances = published.load(set_name).instances
    assert round(excess(kernel, genome.FIRST_FIT, instances), 2) == figures["first_fit"]
    assert round(excess(kernel, genome.BEST_FIT, instances), 2) == figures["best_fit"]


@pytest.mark.parametrize("family", ["weibull", "or"])
def test_twin_gives_the_kernels_bin_count(kernel, family):
    rng = np.random.default_rng({"weibull": 11, "or": 12}[family])
    genomes = rng.normal(0.0, 2.0, (12, genome.SEARCH_LEN))
    # Sparse genomes too: exact zeros make ties, which both must break alike.
    genomes[6:] *= rng.random((6, genome.SEARCH_LEN)) < 0.3
    genomes[-1] = genome.BEST_FIT[: genome.SEARCH_LEN]
    size = {"weibull": 1500, "or": 500}[family]
    instances = [generate(family, "training", 40 + i, items=size) for i in range(3)]
    expected = [[int(run(kernel, g, inst).output.metrics["bins_used"]) for inst in instances] for g in genomes]
    assert twin.bins_used(genomes, instances).tolist() == expected


def test_kernel_reports_bound_excess_and_fuel(kernel):
    instance = generate("weibull", "training", 3, items=2000)
    result = run(kernel, genome.BEST_FIT, instance)
    metrics = result.output.metrics
    assert metrics["l1_bound"] == instance.l1_bound
    assert metrics["items"] == 2000
    assert metrics["excess_pct"] == pytest.approx(100.0 * (metrics["bins_used"] / instance.l1_bound - 1))
    assert result.output.objectives == (metrics["excess_pct"],)
    assert result.fuel_consumed > 0


@pytest.mark.parametrize(
    ("params", "values", "fragment"),
    [
        (genome.BEST_FIT[:-2], [1.0, 10.0, 3.0], "expected 20 or 21"),
        (genome.BEST_FIT[:3] + (float("inf"),) + genome.BEST_FIT[4:], [1.0, 10.0, 3.0], "params[3]"),
        (genome.BEST_FIT, [1.0, 10.0, 11.0], "items[0]"),
        (genome.BEST_FIT, [1.0, 10.0, 0.0], "items[0]"),
        (genome.BEST_FIT, [1.0, 10.0, 4.0, -2.0], "items[1]"),
        (genome.BEST_FIT, [1.0, 10.0], "items"),
        (genome.BEST_FIT, [1.0, 0.0, 1.0], "capacity"),
    ],
)
def test_bad_params_and_input_are_statuses_naming_the_field(kernel, params, values, fragment):
    sandbox, module = kernel
    # Encode by hand: the Python Instance would refuse these before the kernel sees them.
    result = sandbox.run(module, list(params), encode_f64s(values))
    assert result.status is ExecStatus.GUEST_ERROR
    assert fragment in result.message
