"""The fusedops package's PEP 517 backend: setuptools, after the native libraries are built.

``pip install ./python`` (or ``pip install -e ./python``) in a source checkout builds the three
libraries the package loads (``libFusedOpsCAPI.so``, ``libFusedOpsRuntime.so`` and the optional
``_fastcall.abi3.so``) with ``utils/build.sh``, which configures ``build/`` once with Debian's
LLVM/MLIR 22 (``utils/setup.sh`` installs what is missing), builds only what is out of date and
copies them into ``fusedops/_lib``; setuptools then packs the package with them. The libraries
of such a build link Debian's ``libMLIR``/``libLLVM``: for a self-contained wheel, use
``utils/build-wheel.sh``, which builds its own and sets ``FUSEDOPS_PREBUILT_LIBS=1`` so that
nothing is built here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401 - the hooks this backend does not change
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

TARGETS = ("FusedOpsCAPI", "FusedOpsRuntime", "FusedOpsPythonFastCall")
_PACKAGE = Path(__file__).resolve().parents[1]  # python/


def _build_native() -> None:
    if os.environ.get("FUSEDOPS_PREBUILT_LIBS", "").lower() in ("1", "true", "yes"):
        return
    script = _PACKAGE.parent / "utils" / "build.sh"
    libs = _PACKAGE / "fusedops" / "_lib"
    if not script.is_file():
        if (libs / "libFusedOpsCAPI.so").is_file():
            return  # a staged copy of the package with its libraries
        raise RuntimeError(
            "fusedops: building from source needs the repository around python/ "
            f"(utils/build.sh, not found at {script}); install a built wheel instead "
            "(utils/build-wheel.sh)"
        )
    print(f"fusedops: building {', '.join(TARGETS)} with {script}", file=sys.stderr, flush=True)
    done = subprocess.run(["bash", str(script), *TARGETS], stdout=sys.stderr)
    if done.returncode != 0:
        raise RuntimeError(
            f"fusedops: utils/build.sh failed (exit {done.returncode}); its output is above. "
            "utils/setup.sh installs what the build needs (Debian's LLVM/MLIR 22, ninja, cmake)"
        )
    print(f"fusedops: native libraries in {libs}", file=sys.stderr, flush=True)


def _retag(directory: str, name: str) -> str:
    """A wheel that carries native libraries is not ``py3-none-any``: it is tagged cp39-abi3
    (``_fastcall`` uses the limited API; the other libraries are loaded with ctypes) for
    ``$FUSEDOPS_WHEEL_PLATFORM`` (``utils/build-wheel.sh`` sets the manylinux tag its check
    found), else this platform (``linux_x86_64``: such libraries link this machine's
    libMLIR/libLLVM)."""
    with zipfile.ZipFile(Path(directory) / name) as wheel:
        if not any(n.endswith(".so") for n in wheel.namelist()):
            return name
    platform = os.environ.get("FUSEDOPS_WHEEL_PLATFORM") or sysconfig.get_platform().replace(
        "-", "_"
    ).replace(".", "_")
    done = subprocess.run(
        [sys.executable, "-m", "wheel", "tags", "--remove", "--python-tag", "cp39"]
        + ["--abi-tag", "abi3", "--platform-tag", platform, name],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fusedops: could not tag {name} for {platform}: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _build_native()
    name = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    return _retag(wheel_directory, name)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _build_native()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
