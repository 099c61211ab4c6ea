"""The tuner's compiler side from Python: candidates, cache records, the tuning cache the
compiler reads (and ignores when it is broken), the journal and the command line. No GPU needed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fusedops import _codegen as cg
from fusedops import _native
from fusedops.errors import CompilationError, LibraryNotFoundError

try:
    _native.library_dir()
except LibraryNotFoundError as e:  # pragma: no cover - CI builds the libraries first
    pytest.skip(f"native libraries not built: {e}", allow_module_level=True)

from fusedops import tune  # noqa: E402

SOURCE, _ = cg.quantize_source(3000, 4096, "bf16", "f8E4M3FN", granularity="row")


ROW_TILE = "#fusedops.tile<block = [1, 4096], warps = 4>"


def record(cache: Path, tile: str = ROW_TILE, microseconds: float = 1.0) -> str | None:
    """Records ``tile`` for SOURCE as the tuner does; returns the compiler's warning."""
    return tune.record(
        cache,
        SOURCE,
        chip="sm_90a",
        tile=tile,
        microseconds=microseconds,
        candidates=9,
        driver="580.159.04",
        device="NVIDIA H200",
    )


def threads_of(module: _native.CompiledModule) -> int:
    match = re.search(r"\.maxntid (\d+), 1, 1", module.kernel_image.decode())
    assert match, "the kernel declares its block size"
    return int(match.group(1))


def test_candidates_come_checked_and_ranked() -> None:
    info = tune.candidates(SOURCE, "sm_90a")
    assert info["op"] == "fusedops.quantize"
    assert info["strategy"] == "quantize-fp8"
    assert info["key"]["shape_class"] == "M<=4096 K=4096"
    assert info["key"]["compiler"] == _native.compiler_version()
    predicted = [c["predicted_us"] for c in info["candidates"]]
    assert predicted == sorted(predicted) and predicted[0] > 0
    assert info["rejected"] and all(r["reason"] for r in info["rejected"])
    assert info["default"].startswith("#fusedops.tile<")


def test_candidates_reject_bad_input() -> None:
    with pytest.raises(CompilationError, match="unsupported chip 'sm_75'"):
        tune.candidates(SOURCE, "sm_75")
    with pytest.raises(CompilationError, match="expected"):
        tune.candidates("func.func @kernel(", "sm_90a")


def test_recorded_tile_is_what_the_compiler_uses(tmp_path: Path) -> None:
    cache = tmp_path / "tuning.json"
    untuned = _native.compile_module(SOURCE, chip="sm_90a", fmt="isa", tuning_cache=cache)
    tile = "#fusedops.tile<block = [8, 4096], warps = 8>"  # 256 threads
    assert threads_of(untuned) != 256
    assert record(cache, tile, microseconds=17.5) is None
    data = json.loads(cache.read_text())
    assert data["format"] == "fusedops-tuning-cache" and data["version"] == 1
    assert [e["tile"] for e in data["entries"]] == [tile]
    tuned = _native.compile_module(SOURCE, chip="sm_90a", fmt="isa", tuning_cache=cache)
    assert threads_of(tuned) == 256
    # Another shape class (M<=8192) keeps the cost model's tile.
    other, _ = cg.quantize_source(5000, 4096, "bf16", "f8E4M3FN", granularity="row")
    assert threads_of(
        _native.compile_module(other, chip="sm_90a", fmt="isa", tuning_cache=cache)
    ) == threads_of(untuned)


def test_the_kernel_cache_key_follows_the_tuning_cache(tmp_path: Path) -> None:
    cache = tmp_path / "tuning.json"
    key = lambda: _native.cache_key(  # noqa: E731
        SOURCE, chip="sm_90a", fmt="isa", opt_level=3, tuning=_native._file_digest(cache)
    )
    before = key()
    record(cache)
    assert key() != before


def test_broken_tuning_caches_are_reported_and_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "tuning.json"
    cache.write_text('{"format": "fusedops-tuning-cache", "version": 7, "entries": []}')
    with pytest.warns(RuntimeWarning, match="version 7, but this compiler reads version 1"):
        assert _native.usable_tuning_cache(cache) is None
    cache.write_text("{ not json")
    with pytest.warns(RuntimeWarning, match="ignoring tuning cache"):
        module = _native.compile_module(SOURCE, chip="sm_90a", fmt="isa", tuning_cache=cache)
    assert ".entry" in module.kernel_image.decode()
    # The tuner's next record moves the broken file aside and says so.
    warning = record(cache)
    assert warning and "moved it to" in warning
    (aside,) = tmp_path.glob("tuning.json.corrupt-*")  # a name of its own: none is overwritten
    assert str(aside) in warning
    assert aside.read_text() == "{ not json"


def test_record_rejects_what_is_not_a_result(tmp_path: Path) -> None:
    with pytest.raises(CompilationError, match="not a #fusedops.tile"):
        record(tmp_path / "t.json", "[1, 4096]")
    with pytest.raises(CompilationError, match="positive, finite time"):
        record(tmp_path / "t.json", microseconds=0)
    with pytest.raises(CompilationError, match="positive, finite time"):
        record(tmp_path / "t.json", microseconds=float("inf"))
    assert not (tmp_path / "t.json").exists()

    def record_for(source: str, chip: str) -> None:
        tune.record(
            tmp_path / "t.json",
            source,
            chip=chip,
            tile=ROW_TILE,
            microseconds=1.0,
            candidates=1,
            driver="580.159.04",
            device="NVIDIA H200",
        )

    empty = "func.func @kernel() { return }"
    with pytest.raises(CompilationError, match="a tuning result is for one fusedops op; .* 0"):
        record_for(empty, "sm_90a")
    with pytest.raises(CompilationError, match="a lookup is for one fusedops op; .* 0"):
        tune.lookup(tmp_path / "t.json", empty, chip="sm_90a")
    chips = "sm_80, sm_86, sm_89, sm_90 and sm_90a"
    with pytest.raises(CompilationError, match=f"unsupported chip 'sm_75'; use {chips}"):
        record_for(SOURCE, "sm_75")
    assert not (tmp_path / "t.json").exists()


def test_tuning_cache_path_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FUSEDOPS_TUNING_CACHE", str(tmp_path / "x.json"))
    assert _native.tuning_cache_path() == tmp_path / "x.json"
    monkeypatch.setenv("FUSEDOPS_TUNING_CACHE", "none")
    assert _native.tuning_cache_path() is None
    monkeypatch.delenv("FUSEDOPS_TUNING_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _native.tuning_cache_path() == tmp_path / "fusedops" / "tuning.json"


def test_journal_resumes_and_skips_cut_lines(tmp_path: Path) -> None:
    path = tmp_path / "tuning.json.journal"
    journal = tune.Journal(path)
    journal.add({"problem": "p", "tile": "a", "ms": 1.5})
    journal.add({"problem": "p", "tile": "b", "error": "wrong result"})
    with open(path, "a") as f:
        f.write('{"problem": "p", "tile": "c", "m')  # interrupted mid-write
    again = tune.Journal(path)
    assert again.get("p", "a") == {"problem": "p", "tile": "a", "ms": 1.5}
    assert again.get("p", "b")["error"] == "wrong result"
    assert again.get("p", "c") is None


def test_with_tile_sets_the_tile_once() -> None:
    tiled = cg.with_tile(SOURCE, "#fusedops.tile<block = [1, 4096], warps = 4>")
    assert "{tile = #fusedops.tile<block = [1, 4096], warps = 4>}" in tiled
    with pytest.raises(ValueError, match="already has a tile"):
        cg.with_tile(tiled, "#fusedops.tile<block = [1, 4096], warps = 4>")


def test_command_line() -> None:
    args = tune.parse_args(["quantize", "--top-k", "4", "--jobs", "2"])
    assert args.ops == ["quantize"] and args.top_k == 4 and args.jobs == 2
    assert tune.parse_args([]).ops == list(tune.OPS)
    for bad in (["bogus"], ["--top-k", "0"], ["--jobs", "0"]):
        with pytest.raises(SystemExit):
            tune.parse_args(bad)


def test_custom_problems_parse() -> None:
    assert tune.parse_problem("gated_mlp:4096,11008,4096") == ("gated_mlp", [4096, 11008, 4096])
    assert tune.parse_problem("rmsnorm_rope:1,4096,4096") == ("rmsnorm_rope", [1, 4096, 4096])
    assert tune.parse_problem("rmsnorm_rope:1,4096,4096,64")[1][-1] == 64
    assert tune.parse_problem("quantize:8192,8192,row") == ("quantize", [8192, 8192, "row"])
    for bad in ("gated_mlp", "gemm:1,2,3", "gated_mlp:1,2", "gated_mlp:1,2,x", "quantize:8,8,col"):
        with pytest.raises(ValueError, match="--problem"):
            tune.parse_problem(bad)
    args = tune.parse_args(
        ["--problem", "fp8_gemm:128,256,512", "--problem", "dequantize:64,128,tensor"]
    )
    assert args.problems == [("fp8_gemm", [128, 256, 512]), ("dequantize", [64, 128, "tensor"])]
    with pytest.raises(SystemExit):
        tune.parse_args(["--problem", "gated_mlp:0,1,1"])


def test_lookup_finds_what_record_wrote(tmp_path: Path) -> None:
    cache = tmp_path / "tuning.json"
    assert tune.lookup(cache, SOURCE, chip="sm_90a") is None  # no file: nothing cached
    record(cache, "#fusedops.tile<block = [8, 4096], warps = 8>")
    assert (
        tune.lookup(cache, SOURCE, chip="sm_90a") == "#fusedops.tile<block = [8, 4096], warps = 8>"
    )
    assert tune.lookup(cache, SOURCE, chip="sm_90a", driver="580.159.04") is not None
    assert tune.lookup(cache, SOURCE, chip="sm_90a", driver="570.00") is None
    assert tune.lookup(cache, SOURCE, chip="sm_80") is None
    other, _ = cg.quantize_source(5000, 4096, "bf16", "f8E4M3FN", granularity="row")
    assert tune.lookup(cache, other, chip="sm_90a") is None  # another shape class
    with pytest.raises(CompilationError, match="unsupported chip"):
        tune.lookup(cache, SOURCE, chip="sm_75")
