"""Measured autotuning: ``python -m fusedops.tune`` (or ``fusedops-tune``).

For each problem (an operator at a Llama-like shape, from the benchmark suite) the tuner

1. records the kernel source the PyTorch API builds for it;
2. asks the compiler for the strategy's candidate tiles, checked against the strategy's limits
   and ranked by the cost model (``fusedopsTuneCandidates``), and keeps the top ``--top-k`` and
   the default tile (all of them with ``--exhaustive`` or where there are at most twice
   ``--top-k``);
3. compiles the candidates in parallel on the CPU (into the kernel cache);
4. runs each on the GPU, checks its output against the float64 reference and, if it matches,
   times it (CUDA events, warm-up, median, L2 flushed before each run);
5. writes the fastest to the tuning cache (``fusedopsTuningCacheRecord``: merged under a lock,
   replaced atomically), where the compiler's ``fusedops-autotune`` pass finds it.

Each measurement goes to a journal beside the cache as it is taken, so an interrupted run
(Ctrl-C) resumes where it stopped; problems the cache already holds are skipped unless
``--retune``. ``--evidence DIR`` instead compares, per problem, the cost model's pick, the
tuned pick and the best of an exhaustive search, and the tuning time (docs/autotuning.md).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from . import _codegen, _native
from .errors import CompilationError, FusedOpsError

__all__ = ["candidates", "record", "tune_problem", "main"]


def candidates(source: str, chip: str) -> dict:
    """The compiler's candidate tiles for the one op in ``source``: ``{"op", "strategy",
    "key", "default", "candidates": [{"tile", "predicted_us", ...}] (fastest predicted first),
    "rejected": [{"tile", "reason"}]}``."""
    _, capi = _native._load()
    data = source.encode()
    out = ctypes.c_void_p()
    if capi.fusedopsTuneCandidates(data, len(data), chip.encode(), ctypes.byref(out)) != 0:
        raise CompilationError(capi.fusedopsCompilerGetLastError().decode())
    try:
        ops = json.loads(ctypes.string_at(out).decode())["ops"]
    finally:
        capi.fusedopsBufferFree(out)
    if len(ops) != 1:
        raise CompilationError(f"expected one tunable op in the source, found {len(ops)}")
    return ops[0]


def record(
    path: Path,
    source: str,
    *,
    chip: str,
    tile: str,
    microseconds: float,
    candidates: int,
    driver: str,
    device: str,
) -> str | None:
    """Writes a measured winner to the tuning cache at ``path``; returns the compiler's warning
    (a corrupt cache moved aside) if there was one."""
    _, capi = _native._load()
    data = source.encode()
    warning = ctypes.c_void_p()
    status = capi.fusedopsTuningCacheRecord(
        str(path).encode(),
        data,
        len(data),
        chip.encode(),
        tile.encode(),
        microseconds,
        candidates,
        driver.encode(),
        device.encode(),
        ctypes.byref(warning),
    )
    if status != 0:
        raise CompilationError(capi.fusedopsCompilerGetLastError().decode())
    if not warning.value:
        return None
    try:
        return ctypes.string_at(warning).decode()
    finally:
        capi.fusedopsBufferFree(warning)


def lookup(path: Path, source: str, *, chip: str, driver: str = "") -> str | None:
    """The tile the tuning cache at ``path`` holds for the one op in ``source`` (under
    ``driver``, or the fastest under any), or None."""
    _, capi = _native._load()
    data = source.encode()
    tile = ctypes.c_void_p()
    status = capi.fusedopsTuningCacheLookup(
        str(path).encode(), data, len(data), chip.encode(), driver.encode(), ctypes.byref(tile)
    )
    if status != 0:
        raise CompilationError(capi.fusedopsCompilerGetLastError().decode())
    if not tile.value:
        return None
    try:
        return ctypes.string_at(tile).decode()
    finally:
        capi.fusedopsBufferFree(tile)


def driver_version() -> str:
    """The NVIDIA driver version (e.g. ``580.159.04``), ``unknown`` if nvidia-smi cannot say."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


class Journal:
    """Measurements as they are taken (one JSON line each), so a stopped run resumes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], dict] = {}
        if path is None or not path.exists():
            return
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
                self.entries[(entry["problem"], entry["tile"])] = entry
            except (ValueError, KeyError, TypeError):
                continue  # A line cut short by an interruption.

    def get(self, problem: str, tile: str) -> dict | None:
        return self.entries.get((problem, tile))

    def add(self, entry: dict) -> None:
        self.entries[(entry["problem"], entry["tile"])] = entry
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(entry) + "\n")


def _problem_id(source: str, chip: str) -> str:
    return hashlib.sha256(f"{_native.compiler_version()}\0{chip}\0{source}".encode()).hexdigest()[
        :16
    ]


def remeasure(fn: Callable[[], Any], tiles: list[str], repeat: int = 30) -> dict[str, float]:
    """Times ``fn`` built with each of ``tiles`` (kernels already compiled), interleaved in three
    rounds so that clock drift affects all alike; the median of each tile's runs."""
    import statistics

    from . import torch_ops
    from .bench.cases import time_ms

    runs: dict[str, list[float]] = {t: [] for t in tiles}
    for _ in range(3):
        for tile in tiles:
            with torch_ops._tuning(tile, exact=True):
                runs[tile].append(time_ms(fn, warmup=1, repeat=max(repeat // 3, 5)))
    return {t: statistics.median(v) for t, v in runs.items()}


def _precompile(sources: list[str], chip: str, fmt: str, workers: int) -> dict[str, str]:
    """Compiles ``sources`` in parallel into the kernel cache; returns the errors by source."""
    errors: dict[str, str] = {}

    def one(source: str) -> None:
        try:
            _native.compile_module(source, chip=chip, fmt=fmt).close()
        except FusedOpsError as e:
            errors[source] = str(e)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, sources))
    return errors


def tune_problem(
    op: str,
    label: str,
    make: Callable[[], Any],
    *,
    top_k: int,
    exhaustive: bool = False,
    journal: Journal | None = None,
    workers: int = os.cpu_count() or 1,
    repeat: int = 10,
    progress: Callable[[str], None] | None = None,
    skip: Callable[[str, str], bool] | None = None,
) -> dict | None:
    """Tunes one problem and returns what was measured (nothing is written to the cache), or
    None if ``skip(source, chip)`` says so."""
    import torch

    from . import torch_ops
    from .bench.cases import _check, time_ms

    started = time.perf_counter()
    impls, ref, tol, meta = make()
    fn = impls["fusedops"]
    with torch_ops._tuning(exact=True) as seen:  # the kernels of steady shapes
        fn()
    torch.cuda.synchronize()
    sources = sorted(set(seen.sources))
    if len(sources) != 1:
        raise FusedOpsError(f"{op} {label}: one kernel per problem expected, got {len(sources)}")
    source = sources[0]
    chip, _ = torch_ops._target(torch.cuda.current_device())  # where the problems run
    fmt = _native.jit_format(chip)
    if skip is not None and skip(source, chip):
        return None
    info = candidates(source, chip)
    ranked = [c["tile"] for c in info["candidates"]]
    if not ranked:
        raise FusedOpsError(f"{op} {label}: no candidate tile fits: {info['rejected'][:3]}")
    # Small spaces (the row kernels': tens of candidates) are cheap to measure whole.
    chosen = list(ranked) if exhaustive or len(ranked) <= 2 * top_k else ranked[:top_k]
    if info["default"] in ranked and info["default"] not in chosen:
        chosen.append(info["default"])
    problem = _problem_id(source, chip)
    todo = [t for t in chosen if journal is None or journal.get(problem, t) is None]
    errors = _precompile([_codegen.with_tile(source, t) for t in todo], chip, fmt, workers)
    compiled_at = time.perf_counter()

    measured: dict[str, dict] = {}
    for tile in chosen:
        entry = journal.get(problem, tile) if journal is not None else None
        if entry is None:
            entry = {"problem": problem, "tile": tile}
            error = errors.get(_codegen.with_tile(source, tile))
            if error is None:
                try:
                    with torch_ops._tuning(tile, exact=True):
                        out = fn()
                        torch.cuda.synchronize()
                        err = _check("fusedops", out, ref, tol, meta)
                        entry["rel_err"] = err
                        if not (err <= tol):
                            error = f"wrong result: relative error {err:.2e} > {tol:.0e}"
                        else:
                            # Short kernels vary most: take more runs of them (about
                            # 50 ms of kernel time, 10 to 100 runs).
                            estimate = time_ms(fn, warmup=1, repeat=3)
                            runs = int(min(100, max(repeat, 50.0 / max(estimate, 1e-3))))
                            entry["ms"] = time_ms(fn, warmup=1, repeat=runs)
                except FusedOpsError as e:
                    error = str(e)
            if error is not None:
                entry["error"] = error.splitlines()[0][:300]
            if journal is not None:
                journal.add(entry)
        measured[tile] = entry
        if progress is not None:
            progress(f"{op} {label}")
    timed = {t: e["ms"] for t, e in measured.items() if "ms" in e}
    if not timed:
        raise FusedOpsError(f"{op} {label}: no candidate ran correctly: {list(measured.values())}")
    # The front runners again, side by side and with more runs: the first sweep's minimum
    # favours whichever candidate had a lucky run.
    finalists = sorted(timed, key=lambda t: (timed[t], chosen.index(t)))[:3]
    confirmed = remeasure(fn, finalists, repeat=3 * repeat)
    winner = min(finalists, key=lambda t: (confirmed[t], finalists.index(t)))
    timed[winner] = confirmed[winner]
    return {
        "op": op,
        "label": label,
        "source": source,
        "chip": chip,
        "strategy": info["strategy"],
        "key": info["key"],
        "default": info["default"],
        "cost_model_pick": ranked[0],
        "candidates": len(ranked),
        "rejected": len(info["rejected"]),
        "predicted_us": {c["tile"]: c["predicted_us"] for c in info["candidates"]},
        "measured": measured,
        "winner": winner,
        "winner_ms": timed[winner],
        "compile_seconds": compiled_at - started,
        "seconds": time.perf_counter() - started,
    }


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


#: ``--problem`` arguments: the benchmark case each operator's sizes go to, and what they are.
PROBLEM_FORMS = {
    "rmsnorm_rope": ("case_rmsnorm_rope", "BATCH,SEQ,HIDDEN[,HEAD_DIM]"),
    "gated_mlp": ("case_gated_mlp", "M,N,K"),
    "fp8_gemm": ("case_fp8_gemm", "M,N,K"),
    "quantize": ("case_quantize", "M,K,GRANULARITY"),
    "dequantize": ("case_dequantize", "M,K,GRANULARITY"),
}


def parse_problem(text: str) -> tuple[str, list[Any]]:
    """``"gated_mlp:4096,11008,4096"`` -> ``("gated_mlp", [4096, 11008, 4096])``; raises
    ValueError with the expected form."""
    op, _, rest = text.partition(":")
    if op not in PROBLEM_FORMS or not rest:
        forms = "; ".join(f"{o}:{f}" for o, (_, f) in PROBLEM_FORMS.items())
        raise ValueError(f"--problem {text!r}: expected one of {forms}")
    values: list[Any] = []
    for item in rest.split(","):
        item = item.strip()
        if item.isdigit() and int(item) > 0:
            values.append(int(item))
        elif item in ("tensor", "row", "block128"):
            values.append(item)
        else:
            raise ValueError(
                f"--problem {text!r}: {item!r} is neither a positive size nor a granularity; "
                f"{op} takes {PROBLEM_FORMS[op][1]}"
            )
    expected = PROBLEM_FORMS[op][1]
    required = expected.count(",") + 1 - expected.count("[")
    if not required <= len(values) <= expected.count(",") + 1:
        raise ValueError(f"--problem {text!r}: {op} takes {expected}")
    return op, values


def _problems(
    ops: list[str], custom: list[tuple[str, list[Any]]] | None = None
) -> list[tuple[str, str, Callable[[], Any]]]:
    """The benchmark suites of ``ops``, or the ``--problem`` ones where given."""
    from .bench import cases

    if custom:

        def maker(op: str, values: list[Any]) -> Callable[[], Any]:
            case = getattr(cases, PROBLEM_FORMS[op][0])
            return lambda: case(*values)

        return [(op, ",".join(map(str, values)), maker(op, values)) for op, values in custom]
    return [(op, label, make) for op in ops for label, make in cases.SUITES[op]]


def _tune(args: argparse.Namespace) -> int:
    import torch

    from . import torch_ops
    from .bench.cases import Progress

    cache = Path(args.cache) if args.cache else _native.tuning_cache_path()
    if cache is None:
        sys.exit("fusedops-tune: FUSEDOPS_TUNING_CACHE=none; pass --cache <file>")
    journal = Journal(cache.with_name(cache.name + ".journal"))
    device = torch.cuda.get_device_name(0)
    driver = driver_version()
    problems = _problems(args.ops, args.problems)
    _native.usable_tuning_cache(cache)  # warns about a broken file (the next record moves it)

    def cached(source: str, chip: str) -> bool:
        if args.retune:
            return False
        return lookup(cache, source, chip=chip, driver=driver) is not None

    progress = Progress(len(problems) * (args.top_k + 1))
    print(f"tuning {len(problems)} problems on {device} (driver {driver}) into {cache}")
    try:
        for op, label, make in problems:
            result = tune_problem(
                op,
                label,
                make,
                top_k=args.top_k,
                exhaustive=args.exhaustive,
                journal=journal,
                workers=args.jobs,
                progress=progress.step,
                skip=cached,
            )
            torch_ops._forget_kernels()
            if result is None:
                print(f"\n{op} {label}: already in the cache (--retune to measure again)")
                continue
            warning = record(
                cache,
                result["source"],
                chip=result["chip"],
                tile=result["winner"],
                microseconds=result["winner_ms"] * 1e3,
                candidates=sum("ms" in e for e in result["measured"].values()),
                driver=driver,
                device=device,
            )
            if warning:
                print(f"\nwarning: {warning}", file=sys.stderr)
            print(
                f"\n{op} {label}: {result['winner']} {result['winner_ms'] * 1e3:.1f} us "
                f"(default {result['default']}: "
                f"{result['measured'].get(result['default'], {}).get('ms', float('nan')) * 1e3:.1f}"
                f" us; {result['seconds']:.1f} s)"
            )
    except KeyboardInterrupt:
        print(f"\ninterrupted: measurements so far are in {journal.path}; run again to resume")
        return 130
    return 0


def _evidence(args: argparse.Namespace) -> int:
    """Per problem: the cost model's pick, the tuned pick and the default tile as % of the best
    of an exhaustive search (all measured in one sweep), and the tuning time (from an empty
    kernel cache, compiles included)."""
    import torch

    from . import torch_ops
    from .bench.cases import Progress

    out = Path(args.evidence)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0)
    problems = _problems(args.ops, args.problems)
    rows = []
    progress = Progress(len(problems))
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["FUSEDOPS_CACHE_DIR"] = str(Path(scratch) / "kernels")
        os.environ["FUSEDOPS_TUNING_CACHE"] = "none"
        for op, label, make in problems:
            tuned = tune_problem(op, label, make, top_k=args.top_k, workers=args.jobs)
            torch_ops._forget_kernels()
            full = tune_problem(op, label, make, top_k=0, exhaustive=True, workers=args.jobs)
            torch_ops._forget_kernels()
            assert tuned is not None and full is not None
            times = {t: e["ms"] for t, e in full["measured"].items() if "ms" in e}
            best_tile = min(times, key=times.get)
            # The picks once more, side by side with many runs, for the comparison.
            impls, _, _, _ = make()
            picks = list(
                dict.fromkeys(
                    t
                    for t in (best_tile, full["cost_model_pick"], tuned["winner"], full["default"])
                    if t in times
                )
            )
            final = remeasure(impls["fusedops"], picks, repeat=60)
            torch_ops._forget_kernels()
            times.update(final)
            best = min(final.values())
            best_tile = min(final, key=final.get)

            def pct(tile: str, times: dict = times, best: float = best) -> float | None:
                return 100.0 * best / times[tile] if tile in times else None

            rows.append(
                {
                    "op": op,
                    "shape": label,
                    "candidates": full["candidates"],
                    "rejected": full["rejected"],
                    "measured": len(times),
                    "failed": {t: e["error"] for t, e in full["measured"].items() if "error" in e},
                    "best": {"tile": best_tile, "ms": best},
                    "cost_model": {
                        "tile": full["cost_model_pick"],
                        "pct": pct(full["cost_model_pick"]),
                    },
                    "tuned": {"tile": tuned["winner"], "pct": pct(tuned["winner"])},
                    "default": {"tile": full["default"], "pct": pct(full["default"])},
                    "tuning_seconds": tuned["seconds"],
                    "tuning_compile_seconds": tuned["compile_seconds"],
                    "exhaustive_seconds": full["seconds"],
                    "times_ms": times,
                    "source": full["source"],
                    "predicted_us": full["predicted_us"],
                }
            )
            progress.step(f"{op} {label}")
    report = {
        "device": device,
        "driver": driver_version(),
        "compiler": _native.compiler_version(),
        "top_k": args.top_k,
        "rows": rows,
    }
    (out / "autotune.json").write_text(json.dumps(report, indent=1))
    md = _evidence_markdown(report)
    (out / "autotune.md").write_text(md)
    print(md)
    return 0


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _evidence_markdown(report: dict) -> str:
    lines = [
        f"# fusedops autotuning on {report['device']} (driver {report['driver']})",
        "",
        f"{report['compiler']}. Per problem, every candidate the strategy accepts was compiled, "
        "checked against the float64 reference and timed (median of 10 to 100 CUDA-event runs, "
        "about 50 ms of kernel time, L2 flushed before each); the picks are shown as % of the "
        "best of that exhaustive sweep. Tuned = best "
        f"of the cost model's top {report['top_k']} and the default tile (all candidates where "
        f"there are at most {2 * report['top_k']}), measured by a "
        "separate tuning run whose time (compiles from an empty kernel cache included) is shown.",
        "",
        "| op | shape | candidates (rejected) | exhaustive best | ms | cost model | tuned | "
        "default | tuning time |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['op']} | {r['shape']} | {r['measured']} ({r['rejected']}) | "
            f"`{r['best']['tile']}` | {r['best']['ms']:.3f} | {_fmt_pct(r['cost_model']['pct'])} | "
            f"{_fmt_pct(r['tuned']['pct'])} | {_fmt_pct(r['default']['pct'])} | "
            f"{r['tuning_seconds']:.1f} s |"
        )
    lines.append("")
    return "\n".join(lines)


#: The operators the tuner knows problems for (the benchmark suites).
OPS = ("rmsnorm_rope", "gated_mlp", "fp8_gemm", "quantize", "dequantize")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fusedops-tune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ops", nargs="*", metavar="op", help=f"operators to tune (default: {OPS})")
    parser.add_argument(
        "--problem",
        action="append",
        default=[],
        metavar="OP:SIZES",
        help="tune this problem instead of the benchmark suite's, e.g. gated_mlp:4096,11008,4096 "
        "or quantize:8192,8192,row (repeatable)",
    )
    parser.add_argument("--cache", help="tuning cache file (default: fusedops' tuning_cache_path)")
    parser.add_argument(
        "--top-k",
        type=int,
        default=12,
        help="candidates measured per problem, by cost-model rank, where there are more than "
        "twice as many (default 12)",
    )
    parser.add_argument("--exhaustive", action="store_true", help="measure every candidate")
    parser.add_argument(
        "--retune", action="store_true", help="measure problems the cache already has"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel compiles (default: the CPU count)",
    )
    parser.add_argument(
        "--evidence",
        metavar="DIR",
        help="compare cost model, tuned and exhaustive picks; write the report",
    )
    args = parser.parse_args(argv)
    unknown = [op for op in args.ops if op not in OPS]
    if unknown:
        parser.error(f"unknown operator(s) {', '.join(unknown)}; choose from {', '.join(OPS)}")
    args.ops = args.ops or list(OPS)
    try:
        args.problems = [parse_problem(p) for p in args.problem]
    except ValueError as e:
        parser.error(str(e))
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("fusedops-tune needs PyTorch with CUDA: pip install torch")
    if not torch.cuda.is_available():
        sys.exit("fusedops-tune measures kernels on a GPU and PyTorch sees none")
    return _evidence(args) if args.evidence else _tune(args)


if __name__ == "__main__":
    sys.exit(main())
