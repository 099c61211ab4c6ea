#!/usr/bin/env python3
"""Times rmsnorm_rope_grad (the kernel and the sum of its partials) for several counts of
weight-gradient partial sums P (blocks of its grid), beside a device copy of the bytes it moves
(x and the gradient read, dx written), at the training benchmark's QK shape.

    python3 utils/rope-grad-partials.py [--tokens 16384] [--per-sm 8 16 32 64]
        [--tiles "#fusedops.tile<block = [16], warps = 4>" ...]

CUDA events, L2 flushed before each call, median of 20. An experiment for choosing
``_op_kernels._grad_partials``; with ``--tiles`` also the kernel with each of those
tiles at each P (the cost model's pick is the first table's); with ``--kernels`` also the
device time of each kernel (torch.profiler) and the host time a call; with
``--forward-tiles`` also the forward (rmsnorm_rope) with the cost model's tile and each of
those, beside a copy of its bytes; prints Markdown tables.
"""

import argparse
import statistics
import sys

import torch
from fusedops import _op_kernels, torch_ops  # noqa: F401  (registers the ops)
from fusedops.bench.cases import kernel_device_ms


def timed(fn, flush) -> float:
    times = []
    for _ in range(20):
        flush.zero_()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--per-sm", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--tiles", nargs="*", default=[])
    parser.add_argument(
        "--kernels",
        action="store_true",
        help="also device ms per kernel (torch.profiler) and host ms per call",
    )
    parser.add_argument(
        "--forward-tiles",
        nargs="*",
        default=[],
        help="also the forward (rmsnorm_rope) with the cost model's tile and these",
    )
    args = parser.parse_args()
    heads, head_dim = 32, 128
    x = torch.randn(args.tokens, heads, head_dim, device="cuda", dtype=torch.bfloat16)
    grad = torch.randn_like(x)
    w = torch.ones(head_dim, device="cuda", dtype=torch.bfloat16)
    angles = torch.rand(args.tokens, head_dim, device="cuda")
    cos, sin = angles.cos(), angles.sin()
    pos = torch.arange(args.tokens, device="cuda", dtype=torch.int32)[:, None].expand(-1, heads)
    pos = pos.contiguous()
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    # The kernel moves 3 · x's bytes (x and grad in, dx out): a copy of 1.5 · x's bytes moves
    # as many (read + write).
    src = torch.empty(3 * x.numel(), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = timed(lambda: dst.copy_(src), flush)
    head = "| P per SM | P | ms | copy of the bytes / this |"
    rule = "|---|---|---|---|"
    if args.kernels:
        head += " kernel ms | weight-gradient sum ms | other kernels ms | host ms a call |"
        rule += "---|---|---|---|"
    print(f"{head}\n{rule}")
    for per_sm in args.per_sm:
        _op_kernels._grad_partials = lambda x, per_sm=None, k=per_sm: k * sms

        def run():
            return torch.ops.fusedops.rmsnorm_rope_grad(
                x, w, cos, sin, pos, grad, head_dim, 1e-6, "neox", 1.0
            )

        run()
        ms = timed(run, flush)
        row = f"| {per_sm} | {per_sm * sms} | {ms:.4f} | {copy_ms / ms:.2f} |"
        if args.kernels:
            kernels, host = kernel_device_ms(run)
            ours = sum(v for name, v in kernels.items() if "rmsnorm_rope_grad" in name)
            summed = sum(v for name, v in kernels.items() if "weight_sum" in name)
            other = sum(kernels.values()) - ours
            row += f" {ours - summed:.4f} | {summed:.4f} | {other:.4f} | {host:.4f} |"
        print(row, flush=True)
    if args.tiles:
        from fusedops.torch_ops import _tuning

        print("\n| tile | P per SM | ms | copy of the bytes / this |\n|---|---|---|---|")
        for tile in args.tiles:
            for per_sm in args.per_sm:
                _op_kernels._grad_partials = lambda x, per_sm=None, k=per_sm: k * sms
                with _tuning(tile):
                    run()
                    ms = timed(run, flush)
                print(f"| `{tile}` | {per_sm} | {ms:.4f} | {copy_ms / ms:.2f} |", flush=True)
    if args.forward_tiles or "--forward-tiles" in sys.argv:
        from fusedops.torch_ops import _tuning

        # The forward moves 2 · x's bytes (x in, out out).
        fsrc, fdst = src[: 2 * x.numel()], dst[: 2 * x.numel()]
        fcopy_ms = timed(lambda: fdst.copy_(fsrc), flush)

        def forward():
            return torch.ops.fusedops.rmsnorm_rope(x, w, cos, sin, pos, head_dim, 1e-6, "neox", 1.0)

        print("\n| forward tile | ms | copy of the bytes / this |\n|---|---|---|")
        for tile in [None, *args.forward_tiles]:
            if tile is None:
                forward()
                ms = timed(forward, flush)
            else:
                with _tuning(tile):
                    forward()
                    ms = timed(forward, flush)
            print(f"| `{tile or 'cost model'}` | {ms:.4f} | {fcopy_ms / ms:.2f} |", flush=True)
        print(f"\nforward: copy of its {2 * x.numel() * 2 / 1e6:.0f} MB: {fcopy_ms:.4f} ms")
    moved = 3 * x.numel() * 2 / 1e6
    print(f"\ncopy moving the same {moved:.0f} MB (read + write): {copy_ms:.4f} ms")


if __name__ == "__main__":
    main()
