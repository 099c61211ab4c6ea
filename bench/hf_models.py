#!/usr/bin/env python3
"""Hugging Face models patched by fusedops.integrations.transformers (issue 11):
python bench/hf_models.py [--out DIR].

For Llama-, Qwen3-, OLMo-2- and Gemma-style models built from configs (random weights, no
downloads, bf16, 4 layers at 7B-class widths), in one run on one GPU:

* a prefill forward of 1×2048 tokens, unpatched (eager transformers) and after ``patch_model``
  (CUDA events, median of --repeat), and the logits' relative error between the two;
* greedy ``generate()`` with a KV cache for prompts of 16 different lengths: how many modules
  fusedops compiled over the whole loop (one per op and row-count class, not per length), and
  whether the patched model's tokens equal the unpatched model's.

Writes hf_models.json and hf_models.md to --out ($OUT or .).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import fusedops
import fusedops._launch
import torch
import transformers
from fusedops.bench.cases import time_ms
from fusedops.integrations.transformers import patch_model

COMMON = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=4,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=32000,
    max_position_embeddings=8192,
)


def build(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**COMMON))
    elif kind == "qwen3":
        model = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(head_dim=128, **COMMON))
    elif kind == "olmo2":
        model = transformers.Olmo2ForCausalLM(transformers.Olmo2Config(**COMMON))
    else:
        config = transformers.GemmaConfig(head_dim=128, **{**COMMON, "num_key_value_heads": 1})
        model = transformers.GemmaForCausalLM(config)
    return model.eval().cuda().to(torch.bfloat16)


def run(kind: str, repeat: int) -> dict:
    model = build(kind)
    ids = torch.randint(0, 32000, (1, 2048), device="cuda", generator=None)
    prompts = [torch.randint(0, 32000, (1, n), device="cuda") for n in range(40, 200, 10)]
    with torch.no_grad():
        ref = model(ids).logits.double()
        t_eager = time_ms(lambda: model(ids), repeat=repeat)
        kw = dict(max_new_tokens=16, do_sample=False, output_logits=True)
        want = [model.generate(p, return_dict_in_generate=True, **kw) for p in prompts]
        report = patch_model(model)
        got = model(ids).logits.double()
        t_fused = time_ms(lambda: model(ids), repeat=repeat)
        fusedops._launch._forget_kernels()  # count the generate loop's compiles from zero
        tokens = [model.generate(p, max_new_tokens=16, do_sample=False) for p in prompts]
        modules = len(fusedops._launch._modules)
    # Where a patched generation parts from the original, the original's own margin between its
    # top two logits at that step: a near tie at bf16 precision, or a real difference.
    same, margins = 0, []
    for prompt, w, t in zip(prompts, want, tokens):
        new = t[0, prompt.shape[1] :]
        old = w.sequences[0, prompt.shape[1] :]
        if torch.equal(new, old):
            same += 1
            continue
        step = int((new != old).nonzero()[0])
        top2 = w.logits[step][0].float().topk(2).values
        margins.append(float(top2[0] - top2[1]))
    row = {
        "model": kind,
        "patched": sorted({v for v in report.values()}),
        "prefill_eager_ms": t_eager,
        "prefill_patched_ms": t_fused,
        "speedup": t_eager / t_fused,
        "logits_rel_err": float((got - ref).norm() / ref.norm()),
        "generate_prompts": len(prompts),
        "generate_steps": 16,
        "compiled_modules": modules,
        "generations_equal": same,
        "max_margin_where_parted": max(margins, default=None),
        "logit_scale": float(ref.abs().max()),
    }
    print(json.dumps(row), flush=True)
    return row


def markdown(report: dict) -> str:
    lines = [
        f"# Hugging Face models patched by fusedops on {report['device']}",
        "",
        f"torch {report['torch']}, transformers {report['transformers']}; 4-layer models at 4096 "
        "hidden / 11008 intermediate, bf16, random weights. Prefill: 1×2048 tokens, CUDA events, "
        "L2 flushed, median. Generate: 16 prompts of 40-190 tokens, 16 greedy steps each.",
        "",
        "| model | prefill eager ms | patched ms | speedup | logits rel. err | modules compiled "
        "over the generate loop | generations equal | largest top-2 margin where one parted "
        "(max |logit|) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        margin = r["max_margin_where_parted"]
        margin = "—" if margin is None else f"{margin:.3f} ({r['logit_scale']:.1f})"
        lines.append(
            f"| {r['model']} | {r['prefill_eager_ms']:.2f} | {r['prefill_patched_ms']:.2f} "
            f"| {r['speedup']:.2f}× | {r['logits_rel_err']:.1e} | {r['compiled_modules']} "
            f"| {r['generations_equal']}/{r['generate_prompts']} | {margin} |"
        )
    lines += [
        "",
        "Patched: " + "; ".join(f"{r['model']}: {', '.join(r['patched'])}" for r in report["rows"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--models", default="llama,qwen3,olmo2,gemma")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    rows = []
    for kind in args.models.split(","):
        rows.append(run(kind, args.repeat))
        torch.cuda.empty_cache()
    report = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hf_models.json").write_text(json.dumps(report, indent=1))
    (out / "hf_models.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
