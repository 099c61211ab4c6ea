"""The package builds as a wheel that carries its subpackages and, after a build, its libraries."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building a wheel needs setuptools")
    pytest.importorskip("wheel", reason="setuptools < 70.1 needs the wheel package")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("fusedops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "__init__",
        "_native",
        "_codegen",
        "torch_ops",
        "nn",
        "errors",
        "reference",
        "fp8",
        "bench/__init__",
        "bench/__main__",
    ):
        assert f"fusedops/{module}.py" in names
    for lib in ("libFusedOpsRuntime.so", "libFusedOpsCAPI.so"):
        if (ROOT / "fusedops" / "_lib" / lib).exists():
            assert f"fusedops/_lib/{lib}" in names
