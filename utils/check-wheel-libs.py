#!/usr/bin/env python3
"""Checks the native libraries of a fusedops wheel (utils/build-wheel.sh) and prints the wheel's
platform tag.

Every library must need nothing but what a Linux machine with the NVIDIA driver has: glibc's
libraries (the CUDA driver is opened with dlopen, not linked), and find its neighbours through a
RUNPATH of ``$ORIGIN`` alone (no path of the build machine); none may need libMLIR or libLLVM,
and the compiler library may export only the C API (``fusedops*``). The tag is
``manylinux_2_<N>_x86_64`` where 2.N is the newest glibc symbol version any library uses.

    python3 utils/check-wheel-libs.py LIB... [--max-mb 60]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

# What every glibc Linux has; libzstd.so.1 is refused (Debian's LLVM would bring it in through
# compression, which the compiler never uses: --as-needed must have dropped it).
ALLOWED_NEEDED = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "libFusedOpsRuntime.so",
}


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def dynamic(lib: Path) -> tuple[list[str], list[str]]:
    needed, runpath = [], []
    for line in run("readelf", "-d", str(lib)).splitlines():
        m = re.search(r"\((NEEDED|RUNPATH|RPATH)\)\s+.*\[(.*)\]", line)
        if m:
            (needed if m.group(1) == "NEEDED" else runpath).append(m.group(2))
    return needed, runpath


def glibc_minor(lib: Path) -> int:
    versions = re.findall(r"GLIBC_2\.(\d+)", run("objdump", "-T", str(lib)))
    return max((int(v) for v in versions), default=17)


def exported(lib: Path) -> list[str]:
    names = []
    for line in run("nm", "-D", "--defined-only", str(lib)).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW":
            names.append(parts[2])
    return names


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("libs", nargs="+", type=Path)
    parser.add_argument("--max-mb", type=float, default=60.0)
    args = parser.parse_args(argv)
    problems, minor, total = [], 17, 0
    for lib in args.libs:
        needed, runpath = dynamic(lib)
        size = lib.stat().st_size
        total += size
        minor = max(minor, glibc_minor(lib))
        print(f"{lib.name}: {size / 2**20:.1f} MiB, NEEDED {', '.join(needed)}; RUNPATH {runpath}")
        for n in needed:
            if n not in ALLOWED_NEEDED:
                problems.append(f"{lib.name} needs {n}, which a machine with only the driver lacks")
        if any(p != "$ORIGIN" for p in runpath):
            problems.append(f"{lib.name} has RUNPATH {runpath}; only $ORIGIN may be there")
        if lib.name == "libFusedOpsCAPI.so":
            leaked = [s for s in exported(lib) if not s.startswith("fusedops")]
            if leaked:
                problems.append(
                    f"{lib.name} exports {len(leaked)} symbols besides the C API, e.g. {leaked[:3]}"
                )
    print(f"total {total / 2**20:.1f} MiB; newest glibc symbol: 2.{minor}")
    if total > args.max_mb * 2**20:
        problems.append(f"the libraries take {total / 2**20:.1f} MiB, over {args.max_mb} MiB")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"tag: manylinux_2_{minor}_x86_64")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
