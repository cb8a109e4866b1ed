"""//third_party/python:jax works from its per-wheel repositories, on the backend its wheels give."""

import importlib.util

import jax
import jax.numpy as jnp


def test_jit_and_random_run() -> None:
    key = jax.random.key(0)
    values = jax.random.normal(key, (4,))
    doubled = jax.jit(lambda v: 2.0 * v)(values)
    assert jnp.allclose(doubled, values + values)
    assert values.dtype == jnp.float32


def test_backend_follows_the_cuda_opt_in() -> None:
    # Without --config=cuda no CUDA wheel is in the runfiles, so JAX runs on CPU.
    cuda = importlib.util.find_spec("jax_cuda12_plugin") is not None
    assert {device.platform for device in jax.devices()} == ({"gpu"} if cuda else {"cpu"})
