#!/usr/bin/env python3
"""What the card streams at a size, timed as the benchmarks time the ops (fusedops.bench.cases
.time_ms: CUDA events, L2 flushed before each call, median).

    python3 utils/stream-floor.py [MB ...]         # default: 8 22.5 45 90 180 360

For each size: a plain write of that many bytes (a fill: what a kernel's write phase can take at
least), a plain read of them (``amax`` of an int32 buffer: one pass, a few
bytes out; and, where Triton is installed, a read kernel with nothing else to do: one 32 KiB
chunk per block, 16-byte loads, 32 per thread in flight, an atomic max), a device copy of them
(read and write) and, once, the smallest launch (a one-element fill): the time an event pair
around one kernel costs at least. Prints a Markdown table: each
time and rate, and the rate against the copy rate of 1 GiB (the benchmarks' "copy" ceiling).
With ``--profile MB`` it only makes one read of MB (each kind) between cudaProfilerStart and
cudaProfilerStop, for ncu --profile-from-start off.
"""

import argparse

import torch

from fusedops.bench.cases import measure_ceilings, time_ms

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the machine
    triton = None

_CHUNK = 8192  # int32 elements per block: 32 KiB

if triton is not None:

    @triton.jit
    def _read_kernel(x_ptr, out_ptr, n, CHUNK: tl.constexpr):
        offs = tl.program_id(0) * CHUNK + tl.arange(0, CHUNK)
        tl.atomic_max(out_ptr, tl.max(tl.load(x_ptr + offs, mask=offs < n, other=0), 0))


def read_kernel(buf: torch.Tensor, out: torch.Tensor) -> None:
    """Reads ``buf`` (int32) once into ``out`` (its max), with nothing else to do."""
    n = buf.numel()
    _read_kernel[(triton.cdiv(n, _CHUNK),)](buf, out, n, CHUNK=_CHUNK, num_warps=8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=float, default=[8, 22.5, 45, 90, 180, 360])
    parser.add_argument("--profile", type=float, help="one read of this many MB, profiled")
    args = parser.parse_args()
    if args.profile:
        buf = torch.ones(int(args.profile * 1e6) // 4, dtype=torch.int32, device="cuda")
        out = torch.zeros(1, dtype=torch.int32, device="cuda")
        buf.amax()
        if triton is not None:
            read_kernel(buf, out)
        torch.cuda.synchronize()
        torch.cuda.profiler.start()
        buf.amax()
        if triton is not None:
            read_kernel(buf, out)
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()
        return 0
    copy_bps = measure_ceilings()["copy_GBps"] * 1e9
    one = torch.empty(1, device="cuda")
    launch_us = time_ms(lambda: one.fill_(1.0)) * 1e3
    print(f"# Stream floor ({torch.cuda.get_device_name()}, torch {torch.__version__})\n")
    print(f"Copy of 1 GiB: {copy_bps / 1e12:.2f} TB/s; a one-element fill: {launch_us:.1f} us.\n")
    print(
        "| MB | write (fill) us | TB/s | read (amax) us | TB/s | of copy rate "
        "| read (Triton) us | TB/s | of copy rate | copy us | copy TB/s (read+write) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    out = torch.zeros(1, dtype=torch.int32, device="cuda")
    for mb in args.sizes:
        nbytes = int(mb * 1e6) // 4 * 4
        src = torch.ones(nbytes // 4, dtype=torch.int32, device="cuda")
        dst = torch.empty_like(src)
        write_us = time_ms(lambda d=dst: d.fill_(1)) * 1e3
        cells = [f"{write_us:.1f}", f"{nbytes / write_us / 1e6:.2f}"]
        read_us = time_ms(lambda s=src: s.amax()) * 1e3
        cells += [f"{read_us:.1f}", f"{nbytes / read_us / 1e6:.2f}"]
        cells.append(f"{nbytes / (read_us * 1e-6) / copy_bps:.2f}")
        if triton is not None:
            kernel_us = time_ms(lambda s=src: read_kernel(s, out)) * 1e3
            assert out.item() == 1, "the read kernel's max is wrong"
            cells += [f"{kernel_us:.1f}", f"{nbytes / kernel_us / 1e6:.2f}"]
            cells.append(f"{nbytes / (kernel_us * 1e-6) / copy_bps:.2f}")
        else:
            cells += ["(no Triton)", "", ""]
        copy_us = time_ms(lambda s=src, d=dst: d.copy_(s)) * 1e3
        cells += [f"{copy_us:.1f}", f"{2 * nbytes / copy_us / 1e6:.2f}"]
        print(f"| {mb:g} | " + " | ".join(cells) + " |", flush=True)
        del src, dst
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
