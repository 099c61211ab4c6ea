"""The package builds as a wheel that carries its subpackages and, after a build, its libraries."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building a wheel needs setuptools")
    pytest.importorskip("wheel", reason="setuptools < 70.1 needs the wheel package")
    # The package's contents with the libraries already in fusedops/_lib (the build from source
    # is the next test's): FUSEDOPS_PREBUILT_LIBS skips the backend's utils/build.sh, which needs
    # LLVM/MLIR (absent on the GPU machine).
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
        env={**os.environ, "FUSEDOPS_PREBUILT_LIBS": "1"},
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("fusedops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "__init__",
        "_native",
        "_codegen",
        "torch_ops",
        "_launch",
        "_autograd",
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


def test_pip_builds_from_source_and_installs_editable(tmp_path: Path) -> None:
    # `pip install -e ./python`: the package's backend (build_backend/fusedops_build.py) runs
    # utils/build.sh for the native libraries, then setuptools installs the source tree.
    pytest.importorskip("setuptools", reason="building needs setuptools")
    pytest.importorskip("wheel", reason="the backend tags the wheel with the wheel package")
    if not (ROOT.parent / "build" / "build.ninja").is_file():
        pytest.skip("needs utils/build.sh's build/ (else the backend builds everything)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FUSEDOPS_LIBRARY_DIR")}
    done = subprocess.run(
        [python, "-m", "pip", "install", "-v", "--no-deps", "--no-build-isolation", "-e"]
        + [str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "fusedops: building FusedOpsCAPI" in done.stdout + done.stderr
    found = subprocess.run(
        [
            python,
            "-c",
            "import fusedops; from fusedops import _native; "
            "print(fusedops.__file__); print(_native.compiler_version())",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    where, version = found.stdout.splitlines()
    assert Path(where).resolve() == (ROOT / "fusedops" / "__init__.py").resolve()
    assert version.startswith("fusedops-capi")
