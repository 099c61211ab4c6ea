"""A LLaMA-style block in Megatron tensor-parallel layout on fusedops, under torchrun.

    torchrun --nproc-per-node 2 examples/tensor_parallel.py [--tokens 4096] [--fp8-down]
                                                              [--report tp.json]

Rank r runs on cuda:r and talks NCCL (torch.distributed). Each rank holds its slice of every
weight, drawn from one seed, so every rank (and the one-GPU check) sees the same model:

* attention: RMSNorm of the input (PyTorch), column-parallel q/k/v projections (the rank's heads),
  per-head RMSNorm + RoPE of q and k with ``fused_rmsnorm_rope`` on the rank's heads (QK-norm as
  Qwen3 has it), causal SDPA over those heads, row-parallel o projection, ``all_reduce``;
* MLP: RMSNorm, column-parallel gate/up as one ``fused_gated_mlp`` on the rank's rows of Wg and Wu
  (the gated product never reaches memory), row-parallel down projection (bf16 ``F.linear``, or
  ``FP8Linear`` with ``--fp8-down``), ``all_reduce``.

Rank 0 then runs the whole block on its GPU alone and checks the tensor-parallel output against
it (bf16 sums in another order: the bound is printed), and reports each rank's time per block,
the one-GPU time and the scaling.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

import fusedops


@dataclass
class Config:
    hidden: int = 4096
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    intermediate: int = 11008
    eps: float = 1e-6
    theta: float = 10000.0


def full_weights(cfg: Config, seed: int = 0) -> dict[str, torch.Tensor]:
    """The block's weights (bf16, on the CPU), the same on every rank."""
    gen = torch.Generator().manual_seed(seed)

    def w(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * shape[-1] ** -0.5).bfloat16()

    def norm(n: int) -> torch.Tensor:
        return (1 + 0.1 * torch.randn(n, generator=gen)).bfloat16()

    h, d = cfg.hidden, cfg.head_dim
    return {
        "attn_norm": norm(h),
        "q": w(cfg.heads * d, h),
        "k": w(cfg.kv_heads * d, h),
        "v": w(cfg.kv_heads * d, h),
        "q_norm": norm(d),
        "k_norm": norm(d),
        "o": w(h, cfg.heads * d),
        "mlp_norm": norm(h),
        "gate": w(cfg.intermediate, h),
        "up": w(cfg.intermediate, h),
        "down": w(h, cfg.intermediate),
    }


class Block:
    """Rank ``rank`` of ``world``'s share of the block (``world`` = 1: the whole block)."""

    def __init__(
        self, cfg: Config, weights: dict, rank: int, world: int, device, fp8_down: bool
    ) -> None:
        if cfg.heads % world or cfg.kv_heads % world or cfg.intermediate % world:
            raise ValueError(f"heads, kv_heads and intermediate must divide by {world}")
        self.cfg, self.world = cfg, world
        self.heads, self.kv_heads = cfg.heads // world, cfg.kv_heads // world
        d, inter = cfg.head_dim, cfg.intermediate // world

        def rows(t: torch.Tensor, n: int) -> torch.Tensor:  # column-parallel: output rows
            return t[rank * n : (rank + 1) * n].contiguous().to(device)

        def cols(t: torch.Tensor, n: int) -> torch.Tensor:  # row-parallel: input columns
            return t[:, rank * n : (rank + 1) * n].contiguous().to(device)

        self.attn_norm = weights["attn_norm"].to(device)
        self.mlp_norm = weights["mlp_norm"].to(device)
        self.q_norm = weights["q_norm"].to(device)
        self.k_norm = weights["k_norm"].to(device)
        self.wq = rows(weights["q"], self.heads * d)
        self.wk = rows(weights["k"], self.kv_heads * d)
        self.wv = rows(weights["v"], self.kv_heads * d)
        self.wo = cols(weights["o"], self.heads * d)
        self.gate = rows(weights["gate"], inter)
        self.up = rows(weights["up"], inter)
        down = cols(weights["down"], inter)
        if fp8_down:
            self.down = fusedops.FP8Linear(inter, cfg.hidden, bias=False, device=device)
            self.down.set_weight(down)
        else:
            self.down = lambda x: F.linear(x, down)

    def rope_tables(self, seq: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.cfg.head_dim
        inv = 1.0 / self.cfg.theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angles = torch.outer(torch.arange(seq, dtype=torch.float64), inv)
        angles = torch.cat([angles, angles], dim=-1)  # neox layout
        return angles.cos().float().to(device), angles.sin().float().to(device)

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(x)
        return x

    def __call__(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        b, s, _ = x.shape
        d = cfg.head_dim
        # The table row of each (batch, token, head) row of q and k: its token's position.
        token = torch.arange(s, device=x.device, dtype=torch.int32).view(1, s, 1)
        q_positions = token.expand(b, s, self.heads).contiguous()
        k_positions = token.expand(b, s, self.kv_heads).contiguous()

        h = F.rms_norm(x, (cfg.hidden,), self.attn_norm, cfg.eps)
        q = F.linear(h, self.wq).view(b, s, self.heads, d)
        k = F.linear(h, self.wk).view(b, s, self.kv_heads, d)
        v = F.linear(h, self.wv).view(b, s, self.kv_heads, d)
        q = fusedops.fused_rmsnorm_rope(
            q, self.q_norm, cos, sin, eps=cfg.eps, positions=q_positions
        )
        k = fusedops.fused_rmsnorm_rope(
            k, self.k_norm, cos, sin, eps=cfg.eps, positions=k_positions
        )
        group = self.heads // self.kv_heads
        attn = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2).repeat_interleave(group, dim=1),
            v.transpose(1, 2).repeat_interleave(group, dim=1),
            is_causal=True,
        )
        x = x + self.reduce(F.linear(attn.transpose(1, 2).reshape(b, s, -1), self.wo))

        h = F.rms_norm(x, (cfg.hidden,), self.mlp_norm, cfg.eps)
        return x + self.reduce(self.down(fusedops.fused_gated_mlp(h, self.gate, self.up)))


def time_ms(fn, iters: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4096, help="sequence length (batch 1)")
    parser.add_argument("--fp8-down", action="store_true", help="FP8Linear down projection")
    parser.add_argument("--report", help="write the numbers to this JSON file (rank 0)")
    args = parser.parse_args()

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", device_id=device)
    cfg = Config()
    weights = full_weights(cfg)
    block = Block(cfg, weights, rank, world, device, args.fp8_down)
    x = torch.randn(1, args.tokens, cfg.hidden, generator=torch.Generator().manual_seed(1))
    x = x.bfloat16().to(device)
    cos, sin = block.rope_tables(args.tokens, device)

    with torch.inference_mode():
        out = block(x, cos, sin)
        dist.barrier()
        tp_ms = time_ms(lambda: block(x, cos, sin))
        times = [None] * world
        dist.all_gather_object(times, tp_ms)
        if rank == 0:
            single = Block(cfg, weights, 0, 1, device, args.fp8_down)
            want = single(x, cos, sin)
            one_ms = time_ms(lambda: single(x, cos, sin))
            err = ((out.float() - want.float()).abs().max() / want.float().abs().max()).item()
            bound = 0.05 if args.fp8_down else 0.02
            report = {
                "gpus": world,
                "device": torch.cuda.get_device_name(device),
                "tokens": args.tokens,
                "config": cfg.__dict__,
                "fp8_down": args.fp8_down,
                "tp_ms_per_rank": times,
                "one_gpu_ms": one_ms,
                "scaling": one_ms / max(times),
                "max_error_relative_to_max": err,
                "bound": bound,
            }
            print(json.dumps(report, indent=1))
            if args.report:
                with open(args.report, "w") as f:
                    json.dump(report, f, indent=1)
            if not err <= bound:
                raise SystemExit(f"the {world}-GPU block differs from the one-GPU block: {err}")
            print(f"the {world}-GPU output matches the one-GPU block (error {err:.2e} <= {bound})")
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
