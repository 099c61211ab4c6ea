#!/usr/bin/env python3
"""Times fused_rmsnorm_rope with the cost model's tile and with each of --tiles at the suite's
large shapes (bench/memory_ops.py), beside a device copy of the same bytes.

    python3 utils/rope-tiles.py [--tiles "#fusedops.tile<block = [2], warps = 2, stages = 2>" ...]

CUDA events, L2 flushed before each call, median of 30 (fusedops.bench.cases.time_ms). An
experiment for
RmsNormRopeStrategy's candidates and cost model; prints a Markdown table (a tile the kernel
refuses says why).
"""

import argparse
import contextlib

import torch

import fusedops
from fusedops import torch_ops
from fusedops.bench.cases import time_ms
from fusedops.errors import FusedOpsError


def copy_us(nbytes: int) -> float:
    """A device copy of nbytes / 2 bytes (moving nbytes), timed like the op."""
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    return time_ms(lambda: dst.copy_(src), repeat=30) * 1e3


# (rows, hidden, head_dim, dtype): the suite's rows of 64 MB and more.
SHAPES = [
    (4096, 4096, 128, torch.bfloat16),
    (8192, 4096, 128, torch.bfloat16),
    (16384, 4096, 64, torch.float16),
    (8192, 8192, 128, torch.bfloat16),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", nargs="*", default=[])
    args = parser.parse_args()
    print("| shape | tile | µs | copy of the bytes µs | of copy |\n|---|---|---|---|---|")
    for rows, hidden, head_dim, dtype in SHAPES:
        g = torch.Generator(device="cuda").manual_seed(rows + hidden)
        x = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=g)
        w = (1 + 0.1 * torch.randn(hidden, device="cuda", generator=g)).to(dtype)
        cos, sin = fusedops.nn.rope_tables(max(rows, 4096), head_dim, 10000.0, "neox")
        cos, sin = cos.cuda(), sin.cuda()
        moved = 2 * x.numel() * x.element_size() + 2 * rows * head_dim * cos.element_size()
        t_copy = copy_us(moved)
        shape = f"{rows}×{hidden} {str(dtype).split('.')[-1]} h{head_dim}"

        def run(x=x, w=w, cos=cos, sin=sin, head_dim=head_dim):
            return fusedops.fused_rmsnorm_rope(x, w, cos, sin, head_dim=head_dim)

        for tile in [None, *args.tiles]:
            override = torch_ops._tuning(tile) if tile else contextlib.nullcontext()
            try:
                with override:
                    t = time_ms(run, repeat=30) * 1e3
            except FusedOpsError as error:
                print(f"| {shape} | `{tile}` | refused: {str(error).splitlines()[0]} | | |")
                continue
            name = f"`{tile}`" if tile else "cost model"
            print(f"| {shape} | {name} | {t:.1f} | {t_copy:.1f} | {t_copy / t:.1%} |")


if __name__ == "__main__":
    main()
