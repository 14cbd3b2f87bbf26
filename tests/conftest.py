"""Shared fixtures. JAX float64 is switched on per test module (never at import of sdelang_jax)."""
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def jax_float64():
    """Enable jax_enable_x64 for one test module, restoring the previous setting afterwards."""
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
