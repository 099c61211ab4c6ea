#!/usr/bin/env python3
"""Times rms_norm_grad (the kernel and the sum of its partials) with the cost model's tile and
with each of --tiles, for several counts of partial sums P per SM, beside a device copy of the
bytes it moves (x, the gradient and the sum's gradient read, dx written).

    python3 utils/norm-grad-tiles.py [--rows 16384] [--hidden 4096] [--dtype bfloat16]
        [--residual] [--per-sm 4] [--tiles "#fusedops.tile<block = [1], warps = 16>" ...]

CUDA events, L2 flushed before each call, median of 20 (fusedops.bench.cases.time_ms). An
experiment for the tile candidates and the cost model of RmsNormGradStrategy and for
``_op_kernels._grad_partials``; prints a Markdown table (a tile the kernel refuses says why).
``--kernels`` also splits each call's time by torch.profiler into the device time of the
backward kernel, of its weight-gradient sum (the module's second kernel), of other kernels
(PyTorch's, where the partial sums were reduced by PyTorch) and the host time per call
(synchronized).
"""

import argparse
import contextlib

import torch
from fusedops import _op_kernels, torch_ops
from fusedops.bench.cases import kernel_device_ms, time_ms
from fusedops.errors import FusedOpsError


def kernel_times(run) -> tuple[float, float, float, float]:
    """Per call: device ms of the rms_norm_grad kernel, of its weight-gradient sum (the
    module's second kernel), of the other kernels, and host ms."""
    kernels, host = kernel_device_ms(run)
    ours = sum(ms for name, ms in kernels.items() if "rms_norm_grad" in name)
    summed = sum(ms for name, ms in kernels.items() if "rms_norm_grad_weight_sum" in name)
    other = sum(kernels.values()) - ours
    return ours - summed, summed, other, host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--residual", action="store_true", help="add the sum's gradient")
    parser.add_argument("--per-sm", type=int, nargs="+", default=[4])
    parser.add_argument("--tiles", nargs="*", default=[])
    parser.add_argument("--kernels", action="store_true", help="device time per kernel")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    x = torch.randn(args.rows, args.hidden, device="cuda", dtype=dtype)
    grad, w = torch.randn_like(x), torch.ones(args.hidden, device="cuda", dtype=dtype)
    residual_grad = torch.randn_like(x) if args.residual else None
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    streams = 4 if args.residual else 3
    nbytes = streams * x.numel() * x.element_size()
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = time_ms(lambda: dst.copy_(src), repeat=20)

    def run():
        return torch.ops.fusedops.rms_norm_grad(x, w, grad, residual_grad, 1e-6, 0.0)

    print(
        f"rms_norm_grad {args.rows}x{args.hidden} {args.dtype}"
        f"{' +residual_grad' if args.residual else ''}: {nbytes / 1e6:.0f} MB, "
        f"copy of the bytes {copy_ms:.4f} ms\n"
    )
    head = "| tile | P per SM | ms | copy of the bytes / this |"
    if args.kernels:
        head += " kernel ms | weight-gradient sum ms | other kernels ms | host ms a call |"
    print(head + "\n|---|---|---|---|" + ("---|---|---|---|" if args.kernels else ""))
    for tile in [None, *args.tiles]:
        for per_sm in args.per_sm:
            _op_kernels._grad_partials = lambda x, per_sm=None, k=per_sm: min(
                k * sms, max(x.shape[0], 1)
            )
            try:
                if tile is None:
                    run()
                    ms = time_ms(run, repeat=20)
                else:
                    with torch_ops._tuning(tile):
                        run()
                        ms = time_ms(run, repeat=20)
            except (FusedOpsError, RuntimeError) as e:
                print(f"| `{tile}` | {per_sm} | refused: {str(e).splitlines()[0][:120]} | |")
                continue
            name = tile or "cost model"
            row = f"| `{name}` | {per_sm} | {ms:.4f} | {copy_ms / ms:.2f} |"
            if args.kernels:
                with torch_ops._tuning(tile) if tile else contextlib.nullcontext():
                    row += " {:.4f} | {:.4f} | {:.4f} | {:.4f} |".format(*kernel_times(run))
            print(row, flush=True)


if __name__ == "__main__":
    main()
