"""The package without PyTorch (issue 14): the NumPy parts import, and the PyTorch API says what
to install instead of a bare ModuleNotFoundError. Runs whether or not torch is installed: the
test hides it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]

# A fresh interpreter in which `import torch` fails as it does where torch is not installed.
PROGRAM = """
import sys
sys.modules["torch"] = None
import fusedops, fusedops.reference, fusedops.fp8
try:
    getattr(fusedops, NAME)
except ModuleNotFoundError as e:
    print(type(e).__name__, e.name, str(e))
else:
    print("no error")
"""


@pytest.mark.parametrize("name", ["fused_gated_mlp", "FP8Linear"])
def test_torch_api_without_torch_says_what_to_install(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"NAME = {name!r}\n" + PROGRAM],
        cwd=PYTHON_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert out.startswith("ModuleNotFoundError torch "), out
    assert f"fusedops.{name} is part of the PyTorch API" in out
    assert "pip install torch" in out
