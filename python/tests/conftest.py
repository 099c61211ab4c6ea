"""Shared pytest fixtures.

Tests use fresh random inputs on every run so that repeated CI runs explore more cases; the seed
is printed (pytest shows it under "Captured stdout setup" when a test fails) and a failing run can
be replayed with ``FUSEDOPS_TEST_SEED=<seed> python -m pytest python/tests``.

The GPU tests put their tensors on ``"cuda"``, PyTorch's current device; ``--device cuda:N`` (or
``FUSEDOPS_TEST_DEVICE=cuda:N``) makes GPU N current for the whole session, so the same suite runs
on any GPU of the machine. A GPU the machine does not have stops the run with an error (it is
not skipped).
"""

from __future__ import annotations

import os

import numpy as np
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default=os.environ.get("FUSEDOPS_TEST_DEVICE", "cuda"),
        help="the GPU the tests run on, e.g. cuda:1 (default: PyTorch's current device)",
    )


@pytest.fixture(autouse=True, scope="session")
def _test_device(request: pytest.FixtureRequest):
    """Makes the ``--device`` GPU current for the session (see the module's docstring)."""
    spec = request.config.getoption("--device")
    if spec == "cuda":
        yield
        return
    import torch

    device = torch.device(spec)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type != "cuda" or device.index is None or device.index >= count:
        pytest.exit(f"--device {spec}: this machine has {count} GPU(s), cuda:0 to cuda:N", 2)
    previous = torch.cuda.current_device()
    torch.cuda.set_device(device)
    yield
    torch.cuda.set_device(previous)


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator; the seed is printed so failures are reproducible."""
    env = os.environ.get("FUSEDOPS_TEST_SEED")
    seed = int(env) if env else int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    print(f"random seed: {seed} (replay with FUSEDOPS_TEST_SEED={seed})")
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True, scope="session")
def _private_kernel_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keeps the tests' compiled kernels out of the user's cache (unless one is chosen)."""
    if "FUSEDOPS_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["FUSEDOPS_CACHE_DIR"] = str(tmp_path_factory.mktemp("kernel-cache"))
    yield
    del os.environ["FUSEDOPS_CACHE_DIR"]


@pytest.fixture(autouse=True, scope="session")
def _no_user_tuning_cache():
    """Tiles in the tests come from the cost model, not from a tuning cache the user has."""
    if "FUSEDOPS_TUNING_CACHE" in os.environ:
        yield
        return
    os.environ["FUSEDOPS_TUNING_CACHE"] = "none"
    yield
    del os.environ["FUSEDOPS_TUNING_CACHE"]
