"""The in-process compiler through its C API (libFusedOpsCAPI.so), from Python. No GPU needed.

Every op the PyTorch API builds (:mod:`fusedops._codegen`) must compile for every chip, and bad
source must come back as a CompilationError with the compiler's diagnostics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fusedops import _codegen as cg
from fusedops import _native, errors
from fusedops.errors import (
    ArgumentError,
    CompilationError,
    LibraryNotFoundError,
    RuntimeLaunchError,
)

try:
    _native.library_dir()
except LibraryNotFoundError as e:  # pragma: no cover - CI builds the libraries first
    pytest.skip(f"native libraries not built: {e}", allow_module_level=True)

SOURCES = {
    "rmsnorm_rope": cg.rmsnorm_rope_source(
        [2, 8, 256], "f16", [16, 128], "f32", head_dim=128, eps=1e-6, style="neox"
    ),
    "rmsnorm_rope_positions_partial": cg.rmsnorm_rope_source(
        [8, 256],
        "bf16",
        [32, 32],
        "bf16",
        head_dim=64,
        eps=1e-5,
        style="gptj",
        rotary_fraction=0.5,
        positions_shape=[8],
    ),
    "rmsnorm_rope_grad": cg.rmsnorm_rope_source(
        [None, 4, 128],
        "bf16",
        [64, 128],
        "f32",
        head_dim=128,
        eps=1e-6,
        style="neox",
        positions_shape=[None, 4],
        grad_partials=48,
    ),  # fmt: skip
    "rms_norm_grad": cg.rms_norm_source(
        [None, 3, 1000], "f16", eps=1e-6, residual=True, weight_offset=1.0, grad_partials=64
    ),
    "gated_mlp": cg.gated_mlp_source([4, 16, 128], [256, 128], "bf16", activation="gelu_tanh"),
    "gated_mlp_grad": cg.gated_mlp_grad_source([None, 128], [256, 128], "f16", activation="silu"),
    "gated_mlp_saving": cg.gated_mlp_source(
        [None, 128], [256, 128], "bf16", activation="gelu", save_preactivations=True
    ),
    "gated_act_grad": cg.gated_act_grad_source([None, 3, 200], "bf16", activation="gelu_tanh"),
    "fp8_gemm_bias": cg.fp8_gemm_source(
        64, 128, 256, "f8E4M3FN", "f8E5M2", "f16", granularity="row", bias=True
    ),
    "fp8_gemm_tensor": cg.fp8_gemm_source(
        32, 64, 128, "f8E4M3FN", "f8E4M3FN", "bf16", granularity="tensor"
    ),
    "fp8_gemm_fast_accum": cg.fp8_gemm_source(
        32, 256, 256, "f8E4M3FN", "f8E4M3FN", "bf16", granularity="row", fast_accum=True
    ),
    "quantize_block": cg.quantize_source(256, 384, "bf16", "f8E4M3FN", granularity="block128"),
    "quantize_transposed": cg.quantize_source(
        None, 200, "f16", "f8E5M2", granularity="block128", rows_hint=300, transposed=True
    ),
    "dequantize_tensor": cg.dequantize_source(16, 64, "f8E5M2", "f32", granularity="tensor"),
}


def test_compiler_version_names_llvm_and_ptxas() -> None:
    v = _native.compiler_version()
    assert re.fullmatch(r"fusedops-capi \d+; llvm 22\.\d+\.\d+; ptxas (\d+\.\d+|none)", v), v


@pytest.mark.parametrize("chip", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_op_compiles_to_ptx(name: str, chip: str) -> None:
    source, args = SOURCES[name]
    module = _native.compile_module(source, chip=chip, fmt="isa")
    image = module.kernel_image.decode()
    assert f".target {chip}" in image
    assert ".entry" in image
    assert module.function("kernel") != 0
    # The function's parameters are the op's operands, then its outputs.
    assert [m.group(1) for m in re.finditer(r"%(\w+): memref", source)] == args
    module.close()
    with pytest.raises(CompilationError, match="released"):
        module.function("kernel")


def test_cubin_for_hopper() -> None:
    source, _ = SOURCES["gated_mlp"]
    module = _native.compile_module(source, chip="sm_90a", fmt="bin")
    assert module.kernel_image[:4] == b"\x7fELF"


def test_parse_error_carries_the_diagnostic() -> None:
    with pytest.raises(CompilationError, match=r"could not compile.*\n.*expected"):
        _native.compile_module("func.func @kernel(", chip="sm_90a", fmt="isa")


@pytest.mark.parametrize(
    "source",
    [
        "module attributes {x.a = " + "[" * 200_000 + "]" * 200_000 + "} {}",
        "module {" + '"x.op"() ({' * 20_000 + "}" * 20_000,
    ],
    ids=["deep-attribute", "deep-regions"],
)
def test_deeply_nested_source_is_refused_before_parsing(source: str) -> None:
    # MLIR's parser recurses per level on the caller's thread: without the bound (issue 14)
    # these overflow the stack and take the Python process down.
    with pytest.raises(CompilationError, match="nests brackets deeper than 256 levels"):
        _native.compile_module(source, chip="sm_90a", fmt="isa")


def test_rmsnorm_rope_positions_compile_as_int32_or_int64() -> None:
    # Hugging Face's position_ids are int64: the kernel reads either width (all 8 bytes of an
    # int64: the PTX differs from the int32 kernel's).
    ptx = {}
    for positions_dtype in ("i32", "i64"):
        source, _ = cg.rmsnorm_rope_source(
            [3, 37, 1024],
            "bf16",
            [4096, 128],
            "bf16",
            head_dim=128,
            eps=1e-6,
            style="neox",
            positions_shape=[3, 37],
            positions_dtype=positions_dtype,
        )
        assert f"memref<3x37x{positions_dtype}>" in source
        module = _native.compile_module(source, chip="sm_90a", fmt="isa", disk_cache=False)
        ptx[positions_dtype] = module.kernel_image.decode()
    assert ptx["i32"].count("ld.global") < ptx["i64"].count("ld.global")


def test_verifier_error_carries_the_diagnostic() -> None:
    # The builders verify the op they build: the verifier's message, before any compile.
    with pytest.raises(ArgumentError, match=r"hidden size of 'input' \(250\).*head_dim \(128\)"):
        cg.rmsnorm_rope_source(
            [2, 8, 250], "f16", [16, 128], "f32", head_dim=128, eps=1e-6, style="neox"
        )
    # Source written by hand reaches the compiler's verifier, whose message comes back.
    source, _ = cg.rmsnorm_rope_source(
        [2, 8, 256], "f16", [16, 128], "f32", head_dim=128, eps=1e-6, style="neox"
    )
    with pytest.raises(CompilationError, match="head_dim"):
        _native.compile_module(source.replace("256xf16", "250xf16"), chip="sm_90a", fmt="isa")


def test_fast_accum_reaches_the_kernel_and_its_rule_is_the_verifiers() -> None:
    # Promoted FP8 sums add each K tile's products in f32; fast_accum leaves them in the MMAs.
    for fast, adds in ((False, True), (True, False)):
        source, _ = cg.fp8_gemm_source(
            64, 256, 512, "f8E4M3FN", "f8E4M3FN", "bf16", granularity="tensor", fast_accum=fast
        )
        ptx = _native.compile_module(source, chip="sm_90a", fmt="isa").kernel_image.decode()
        assert "wgmma.mma_async" in ptx
        assert ("add.rn.f32" in ptx) == adds
    with pytest.raises(ArgumentError, match="'fast_accum' applies to tensor and row scales"):
        cg.fp8_gemm_source(
            64, 256, 512, "f8E4M3FN", "f8E4M3FN", "bf16", granularity="block128", fast_accum=True
        )


def test_tensor_form_example_compiles_through_the_c_api() -> None:
    # The C API knows the dialects fusedops-compile accepts (it said "Dialect `tensor' not
    # found" on the bundled example: issue 14).
    example = Path(__file__).resolve().parents[2] / "examples" / "llama_block.mlir"
    module = _native.compile_module(example.read_text(), chip="sm_90a", fmt="isa")
    assert ".entry gated_mlp" in module.kernel_image.decode()


def test_chip_table_through_the_c_api() -> None:
    # Python asks the compiler's chip table; it keeps no list of its own.
    assert _native.chip_for_capability(9, 0) == "sm_90a"
    assert _native.chip_for_capability(8, 7) == "sm_86"
    assert _native.chip_for_capability(7, 5) is None
    assert _native.jit_format("sm_80") == "isa"
    assert _native.jit_format("sm_90a") == "bin"
    assert _native.known_chips() == "sm_80, sm_86, sm_89, sm_90 and sm_90a"
    with pytest.raises(CompilationError, match="unknown chip 'sm_75'; fusedops builds for sm_80"):
        _native.jit_format("sm_75")


def test_unknown_chip_and_format_are_reported() -> None:
    source, _ = SOURCES["quantize_block"]
    with pytest.raises(CompilationError, match="sm_70"):
        _native.compile_module(source, chip="sm_70", fmt="isa")
    with pytest.raises(CompilationError, match="unknown format 'elf'"):
        _native.compile_module(source, chip="sm_90a", fmt="elf")


def test_missing_function_is_reported() -> None:
    module = _native.compile_module(SOURCES["dequantize_tensor"][0], chip="sm_90a", fmt="isa")
    with pytest.raises(CompilationError, match="no function @nope"):
        module.function("nope")


def test_library_search_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    real = _native.library_dir()
    monkeypatch.setenv("FUSEDOPS_LIBRARY_DIR", str(tmp_path))
    assert _native._candidate_dirs()[0] == tmp_path
    # A folder without the libraries is never chosen.
    try:
        assert _native.library_dir() != tmp_path
    except LibraryNotFoundError:
        pass
    for name in (_native._RUNTIME, _native._CAPI):
        (tmp_path / name).symlink_to(real / name)
    assert _native.library_dir() == tmp_path


def test_missing_libraries_say_how_to_build_them(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(_native, "_candidate_dirs", lambda: [tmp_path])
    with pytest.raises(LibraryNotFoundError, match="utils/build.sh.*FUSEDOPS_LIBRARY_DIR"):
        _native.library_dir()


def test_op_sources_come_from_the_dialects_builders() -> None:
    # The C API builds the op with its C++ builder and MLIR prints it: the operand order and the
    # shapes that follow from the others (here the block-128 scales and the output) are the
    # dialect's, and the names say which argument is which.
    source, args = cg.fp8_gemm_source(
        200, 300, 256, "f8E4M3FN", "f8E5M2", "bf16", granularity="block128", bias=True
    )
    assert args == ["a", "b", "sa", "sb", "bias", "out"]
    assert "llvm.emit_c_interface" in source
    head = source.split("attributes")[0]  # the signature
    for t in (
        "memref<200x256xf8E4M3FN>",
        "memref<300x256xf8E5M2>",
        "memref<2x2xf32>",
        "memref<3x2xf32>",
        "memref<300xf32>",
        "memref<200x300xbf16>",
    ):
        assert t in head, (t, head)
    assert "granularity = block128" in source and "fast_accum" not in source
    source, args = SOURCES["gated_mlp_grad"]
    assert args == ["x", "wg", "wu", "grad", "grad_gate", "grad_up"]
    assert "fusedops.gated_mlp_grad" in source and "activation = silu" in source
    assert source.split("attributes")[0].count("memref<?x256xf16>") == 3
    _, args = SOURCES["gated_mlp_saving"]
    assert args == ["x", "wg", "wu", "out", "gate", "up"]
    source, args = SOURCES["rmsnorm_rope_grad"]
    assert args == ["x", "w", "cos", "sin", "positions", "grad", "dx", "dw_partials", "dw"]
    assert "fusedops.rmsnorm_rope_grad" in source and "memref<48x128xf32>" in source
    # The third output, the weight's gradient: the op sums the partials itself.
    outs = "%dw : memref<?x4x128xbf16>, memref<48x128xf32>, memref<128xbf16>)"
    assert outs in source
    source, args = SOURCES["rms_norm_grad"]
    assert args == ["x", "w", "grad", "residual_grad", "dx", "dw_partials", "dw"]
    assert "fusedops.rms_norm_grad" in source and "memref<64x1000xf32>, memref<1000xf16>" in source
    assert "weight_offset = 1.000000e+00" in source
    assert source.split("attributes")[0].count("memref<?x3x1000xf16>") == 4
    source, args = SOURCES["quantize_transposed"]
    assert args == ["x", "q", "s", "qt"]  # qᵀ: [cols, rows rounded up to 16]
    assert "memref<?x200xf8E5M2>" in source and "memref<200x?xf8E5M2>" in source
    assert _native.quantize_transposed_rows(300) == 304
    assert _native.quantize_transposed_rows(0) == 0
    with pytest.raises(ArgumentError, match="rows are not negative"):
        _native.quantize_transposed_rows(-1)
    source, args = SOURCES["gated_act_grad"]
    assert args == ["gate", "up", "grad", "grad_gate", "grad_up"]
    assert source.split("attributes")[0].count("memref<?x3x200xbf16>") == 5
    source, args = cg.rmsnorm_rope_source(
        [2, 5, 128], "bf16", [9, 32], "f32", head_dim=64, eps=1e-5, style="gptj",
        rotary_fraction=0.5, positions_shape=[2, 5],
    )  # fmt: skip
    assert args == ["x", "w", "cos", "sin", "positions", "out"]
    assert "memref<128xbf16>" in source and "memref<2x5xi32>" in source
    assert "style = gptj" in source and "rotary_fraction = 5.000000e-01" in source


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"op": "softmax"}, "'op' is 'softmax'; expected rmsnorm_rope"),
        ({"op": "gated_mlp", "n": 8, "dtype": "bf16", "activation": "silu"}, "'x_shape' must be"),
        (
            {"op": "gated_mlp", "x_shape": [4, 8], "n": 8, "dtype": "bf17", "activation": "silu"},
            "'dtype' must be an MLIR element type",
        ),
        (
            {"op": "gated_mlp", "x_shape": [4, 8], "n": 8, "dtype": "bf16", "activation": "relu"},
            "'activation' is 'relu', which the dialect does not spell",
        ),
        (
            {"op": "quantize", "rows": -1, "cols": 8, "dtype": "bf16", "fp8": "f8E4M3FN",
             "granularity": "row"},
            "'rows' must be an integer from 0 to 2^48",
        ),
        (
            {"op": "fp8_gemm", "m": 4, "n": 8, "k": 1 << 60, "a_dtype": "f8E4M3FN",
             "b_dtype": "f8E4M3FN", "out_dtype": "bf16", "granularity": "row"},
            "'k' must be an integer from 0 to 2^48",
        ),
        (
            {"op": "fp8_gemm", "m": 4, "n": 8, "k": 64, "a_dtype": "f8E4M3FN",
             "b_dtype": "f8E4M3FN", "out_dtype": "bf16", "granularity": "row", "bias": "yes"},
            "'bias' must be true or false",
        ),
        (
            {"op": "gated_mlp", "x_shape": [4, -8], "n": 8, "dtype": "bf16", "activation": "silu"},
            "'x_shape' must be a list of sizes from 0 to 2^48",
        ),
        (
            {"op": "rmsnorm_rope", "x_shape": [4, 96], "dtype": "bf16", "table_shape": [4, 64],
             "table_dtype": "bf16", "head_dim": 64, "eps": 1e-6, "style": "neox"},
            "does not verify",
        ),
    ],
)  # fmt: skip
def test_bad_op_requests_name_the_field(request_fields, message) -> None:
    with pytest.raises(ArgumentError, match=re.escape(message)):
        _native.build_op_source(json.dumps(request_fields))


def test_bad_tiles_are_refused_by_name() -> None:
    source, _ = cg.quantize_source(16, 64, "bf16", "f8E4M3FN", granularity="row")
    with pytest.raises(ArgumentError, match="'#fusedops.tile<' is not a #fusedops.tile"):
        cg.with_tile(source, "#fusedops.tile<")


def test_op_requests_must_be_json_objects() -> None:
    for bad in ("[1, 2]", "{", ""):
        with pytest.raises(ArgumentError, match="JSON"):
            _native.build_op_source(bad)
    # Nesting is refused before parsing (the parser recurses per level: 400,000 levels would
    # overflow the caller's stack); brackets inside strings do not count.
    with pytest.raises(ArgumentError, match="nests deeper than 8 levels"):
        _native.build_op_source('{"op": ' + "[" * 400_000 + "]" * 400_000 + "}")
    with pytest.raises(ArgumentError, match=re.escape("'op' is '[[[")):
        _native.build_op_source('{"op": "' + "[" * 100 + '"}')
    with pytest.raises(ArgumentError, match="at most 1048576"):
        _native.build_op_source('{"op": "' + "x" * (2 << 20) + '"}')


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_op_gets_a_launch_plan(name: str) -> None:
    # The PyTorch API's modules only launch kernels on their arguments, so each gets a plan that
    # launches them without the JIT'd host code: the arguments' data pointers, in order, fill
    # the pointer parameters; everything else is fixed.
    source, args = SOURCES[name]
    module = _native.compile_module(source, chip="sm_90a", fmt="isa")
    plan = module.launch_plan("kernel")
    assert plan is not None
    assert plan["launches"], plan
    used = set()
    for launch in plan["launches"]:
        assert launch["module"] == "fusedops_kernels"
        assert f".entry {launch['kernel']}(" in module.kernel_image.decode()
        assert len(launch["grid"]) == 3 and len(launch["block"]) == 3
        assert 0 < launch["block"][0] * launch["block"][1] * launch["block"][2] <= 1024
        assert len(launch["params"]) == len(launch["param_args"])
        pointers = [a for a in launch["param_args"] if a >= 0]
        # Descriptors: allocated and aligned pointers of the same argument, side by side.
        assert pointers and len(pointers) % 2 == 0
        assert all(a < len(args) for a in pointers)
        used.update(pointers)
        # The sm_90a GEMMs read A and each B through TMA tensor maps (encoded per run from the
        # arguments) on a persistent grid; tiles of two MMA warpgroups (384 threads with the
        # producer's) also store their output (the last argument, rows of whole 16 bytes here)
        # through one, in boxes of 16 rows × 128 bytes; kernels of several [M, N] tensors
        # (gated_mlp_grad, gated_mlp saving its pre-activations) store them from registers.
        # The other ops have neither.
        gemm = name.startswith(("gated_mlp", "fp8_gemm"))
        maps = launch["tensor_maps"]
        if gemm:
            stores = [m for m in maps if m["arg"] == max(pointers)]
            assert len(maps) - len(stores) == (3 if name.startswith("gated_mlp") else 2), maps
            several = name in ("gated_mlp_grad", "gated_mlp_saving")
            staged = launch["block"][0] == 384 and not several
            assert len(stores) == (1 if staged else 0), (launch["block"], maps)
            assert all(m["box_rows"] == 16 and m["swizzle_bytes"] == 128 for m in stores), stores
            assert {m["arg"] for m in maps} <= set(range(len(args)))
            assert all(m["swizzle_bytes"] in (32, 64, 128) for m in maps)
            assert all(m["param"] >= len(launch["params"]) - len(maps) for m in maps)
            assert launch["grid_per_sm"] >= 1
            # Clustered: fixed in the kernel, so the runtime rounds the grid to whole clusters.
            if name.endswith("cluster"):
                assert ".reqnctapercluster 2, 1, 1" in module.kernel_image.decode()
        else:
            assert not maps and launch["grid_per_sm"] == 0
    assert used == set(range(len(args))), "every argument reaches a kernel"
    assert module.launch_plan("absent") is None


def test_a_clustered_gemm_gets_a_persistent_launch_plan() -> None:
    # A 2×1 cluster is fixed in the kernel (so cuLaunchKernel launches clusters); host code
    # rounds the persistent grid down to whole clusters, which the plan replays (the runtime
    # rounds by the kernel's required cluster width). The mma.sync mainloop refuses clusters.
    tile = "#fusedops.tile<block = [128, 128, 128], warps = 8, stages = 4, cluster = [2]>"
    source, args = cg.fp8_gemm_source(
        300, 256, 512, "f8E4M3FN", "f8E4M3FN", "bf16", granularity="row"
    )
    module = _native.compile_module(cg.with_tile(source, tile), chip="sm_90a", fmt="isa")
    assert ".reqnctapercluster 2, 1, 1" in module.kernel_image.decode()
    plan = module.launch_plan("kernel")
    assert plan is not None and len(plan["launches"]) == 1
    launch = plan["launches"][0]
    assert launch["grid_per_sm"] == 1 and len(launch["tensor_maps"]) == 3
    # A's boxes are BM = 128 rows, B's half of BN = 128, the output's a warp's 16 rows.
    assert sorted(m["box_rows"] for m in launch["tensor_maps"]) == [16, 64, 128]
    with pytest.raises(CompilationError, match="the mma.sync mainloop takes no cluster"):
        _native.compile_module(cg.with_tile(source, tile), chip="sm_80", fmt="isa")


def test_launch_plan_needs_a_gpu_to_run() -> None:
    source, _ = SOURCES["dequantize_tensor"]
    module = _native.compile_module(source, chip="sm_90a", fmt="isa")
    if _native.runtime().fusedopsInit() == 0:
        pytest.skip("a GPU is present: this checks the path without one")
    with pytest.raises(RuntimeLaunchError, match="CUDA driver"):
        _native.LaunchPlan(module, module.launch_plan("kernel"))


def test_triton_imports_after_the_compiler_is_loaded() -> None:
    # With libFusedOpsCAPI.so (and so Debian's libLLVM/libMLIR) loaded RTLD_GLOBAL, importing
    # Triton 3.9 (torch.compile does) died of SIGSEGV in Triton's LLVM initialisation.
    pytest.importorskip("triton")
    program = (
        "from fusedops import _native\n"
        "_native._load()\n"
        "import triton\n"
        "print('ok', triton.__version__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.startswith("ok ")


def test_compiles_with_tritons_ptxas_and_libdevice_without_a_toolkit(monkeypatch, tmp_path) -> None:
    # A machine with the driver and PyTorch from pip has no CUDA toolkit, but Triton (which
    # PyTorch installs) bundles ptxas and libdevice: the compiler uses them through a folder of
    # links in the kernel cache.
    pytest.importorskip("triton")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "no-toolkit"))
    assert _native._system_toolkit() == str(tmp_path / "no-toolkit")
    monkeypatch.setattr(_native, "_package_dir", lambda name: _real_package_dir(name, "nvidia"))
    monkeypatch.setenv("FUSEDOPS_CACHE_DIR", str(tmp_path / "cache"))
    toolkit = _native.default_toolkit()
    assert toolkit and toolkit.startswith(str(tmp_path / "cache" / "toolkit"))
    assert os.path.islink(os.path.join(toolkit, "nvvm", "libdevice", "libdevice.10.bc"))
    assert _native.find_ptxas() == os.path.join(toolkit, "bin", "ptxas")
    assert _native.jit_format("sm_90a") == "bin"
    source, _ = SOURCES["gated_mlp"]
    module = _native.compile_module(source, chip="sm_90a", fmt="bin", disk_cache=False)
    assert module.kernel_image[:4] == b"\x7fELF"
    # The links are made once and found again.
    assert _native.default_toolkit() == toolkit
    # Without any ptxas, the chips whose kernels are cubins get PTX for the driver to compile.
    monkeypatch.setattr(_native, "find_ptxas", lambda: None)
    assert _native.jit_format("sm_90a") == "isa"
    assert _native.jit_format("sm_80") == "isa"


def test_no_ptxas_asks_for_the_drivers_ptx_jit(monkeypatch) -> None:
    # FUSEDOPS_NO_PTXAS=1: no ptxas even where one is installed; every chip gets PTX.
    monkeypatch.setenv("FUSEDOPS_NO_PTXAS", "1")
    assert _native.find_ptxas() is None
    assert _native.jit_format("sm_90a") == "isa"
    monkeypatch.setenv("FUSEDOPS_NO_PTXAS", "0")
    if _native.find_ptxas() is not None:
        assert _native.jit_format("sm_90a") == "bin"


def _real_package_dir(name: str, hide: str):
    # The real lookup, except for the packages whose name starts with `hide` (an installed
    # nvidia-cuda-nvcc wheel would otherwise be preferred to Triton's copies).
    import importlib.util

    if name.startswith(hide):
        return None
    spec = importlib.util.find_spec(name)
    return list(spec.submodule_search_locations)[0] if spec else None


@pytest.mark.parametrize("granularity", ["tensor", "row", "block128"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (128, 128), (129, 4096), (300, 257), (0, 5)])
def test_scale_shapes_come_from_the_compiler(granularity: str, rows: int, cols: int) -> None:
    # One rule, the dialect's (getScaleShape), asked through the C API; the float64 reference
    # keeps its own copy as an independent oracle.
    from fusedops import reference

    assert _native.scale_shape(granularity, rows, cols) == reference.scale_shape(
        granularity, rows, cols
    )


def test_bad_scale_shapes_are_refused() -> None:
    with pytest.raises(errors.ArgumentError, match="'tensor', 'row' or 'block128'"):
        _native.scale_shape("column", 4, 4)
    with pytest.raises(errors.ArgumentError, match="not negative"):
        _native.scale_shape("row", -1, 4)


def test_the_api_does_not_import_the_float64_reference() -> None:
    # Production code asks the compiler for its rules; the reference is for tests and users.
    code = (
        "import importlib, sys, fusedops, fusedops._codegen, fusedops._native\n"
        "for name in ('fusedops.torch_ops', 'fusedops.nn'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as e:  # no PyTorch here\n"
        "        assert e.name == 'torch', e\n"
        "assert 'fusedops.reference' not in sys.modules, 'imported'\n"
        "from fusedops import reference\n"
        "assert reference.scale_shape('row', 3, 4) == (3,)\n"
    )
    package = str(Path(_native.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


# One op per kind with dynamic rows, and a static twin (same tile) of each for a row count.
def _dynamic_and_static(name: str, rows: int) -> tuple[str, str]:
    if name == "gated_mlp":
        make = lambda m, hint: cg.gated_mlp_source(  # noqa: E731
            [m, 512], [384, 512], "bf16", activation="silu", rows_hint=hint
        )
    elif name == "gated_mlp_3d":
        make = lambda m, hint: cg.gated_mlp_source(  # noqa: E731
            [None, None, 512] if m is None else [1, m, 512],
            [384, 512],
            "f16",
            activation="gelu",
            rows_hint=hint,
        )
    elif name == "fp8_gemm_row":
        make = lambda m, hint: cg.fp8_gemm_source(  # noqa: E731
            m, 256, 512, "f8E4M3FN", "f8E4M3FN", "bf16", granularity="row", rows_hint=hint
        )
    elif name == "fp8_gemm_block":
        make = lambda m, hint: cg.fp8_gemm_source(  # noqa: E731
            m, 256, 512, "f8E4M3FN", "f8E5M2", "f32", granularity="block128", rows_hint=hint
        )
    elif name == "quantize_tensor":
        make = lambda m, hint: cg.quantize_source(  # noqa: E731
            m, 512, "bf16", "f8E4M3FN", granularity="tensor", rows_hint=hint
        )
    elif name == "dequantize_row":
        make = lambda m, hint: cg.dequantize_source(  # noqa: E731
            m, 512, "f8E5M2", "f16", granularity="row", rows_hint=hint
        )
    else:  # rmsnorm_rope with positions
        make = lambda m, hint: cg.rmsnorm_rope_source(  # noqa: E731
            [None, None, 256] if m is None else [1, m, 256],
            "bf16",
            [64, 64],
            "f32",
            head_dim=64,
            eps=1e-6,
            style="neox",
            positions_shape=[None, None] if m is None else [1, m],
            rows_hint=hint,
        )
    dynamic, _ = make(None, 64)
    tile = _tile_of(dynamic)
    static, _ = make(rows, None)
    return dynamic, cg.with_tile(static, tile) if tile else static


def _tile_of(source: str) -> str | None:
    """The tile the cost model picks for ``source``'s op (what compiling it sets)."""
    from fusedops import tune

    info = tune.candidates(source, "sm_90a")
    return info["candidates"][0]["tile"] if info["candidates"] else None


def _sizes(source: str) -> list[list[int | None]]:
    """The memref arguments' shapes of ``@kernel`` in ``source`` (None: dynamic)."""
    header = re.search(r"func\.func @kernel\((.*?)\)\s*attributes", source, re.S).group(1)
    shapes = []
    for shape in re.findall(r"memref<([^>]*)>", header):
        dims = shape.split("x")[:-1]
        shapes.append([None if d == "?" else int(d) for d in dims])
    return shapes


DYNAMIC = [
    "gated_mlp",
    "gated_mlp_3d",
    "fp8_gemm_row",
    "fp8_gemm_block",
    "quantize_tensor",
    "dequantize_row",
    "rmsnorm_rope",
]


@pytest.mark.parametrize("name", DYNAMIC)
@pytest.mark.parametrize("rows", [1, 37, 64])
def test_a_dynamic_plan_for_given_sizes_is_the_static_plan(name: str, rows: int) -> None:
    # A module with dynamic rows serves every row count of its class: its plan, evaluated for
    # the sizes of a call, launches what the static module of those sizes (same tile) launches,
    # but for the kernels' own parameters that a static kernel folds in, and the shared memory
    # of A's ring where a static kernel's M is below its 64-row tile (its A box holds M rows
    # rounded up to 8: WgmmaGemmPlan::aSlotRows).
    dynamic, static = _dynamic_and_static(name, rows)
    assert "?x" in dynamic and "fusedops.rows_hint = 64" in dynamic
    dyn = _native.compile_module(dynamic, chip="sm_90a", fmt="isa", disk_cache=False)
    fixed = _native.compile_module(static, chip="sm_90a", fmt="isa", disk_cache=False)
    template = dyn.launch_plan("kernel")
    assert template is not None and template.get("dynamic"), template
    sizes = [d for shape in _sizes(static) for d in shape]
    plan = dyn.launch_plan("kernel", sizes)
    want = fixed.launch_plan("kernel")
    assert "dynamic" not in plan and all("exprs" not in launch for launch in plan["launches"])
    assert [launch["kernel"] for launch in plan["launches"]] == [
        launch["kernel"] for launch in want["launches"]
    ]
    for got, expected in zip(plan["launches"], want["launches"]):
        for field in ("grid", "block", "grid_per_sm"):
            assert got[field] == expected[field], (field, got, expected)
        maps, want_maps = got["tensor_maps"], expected["tensor_maps"]
        # A GEMM (its operands come through tensor maps) of one MMA warpgroup: a 64-row tile.
        if rows < 64 and maps and got["block"][0] == 256:
            assert got["shared_memory"] > expected["shared_memory"], (got, expected)
            # A's map (the first): 64-row boxes, the static kernel's of M rows rounded up.
            assert maps[0]["box_rows"] == 64, maps
            assert want_maps[0]["box_rows"] == -(-rows // 8) * 8, want_maps
            maps = [dict(maps[0], box_rows=want_maps[0]["box_rows"]), *maps[1:]]
        else:
            assert got["shared_memory"] == expected["shared_memory"], (got, expected)
        assert maps == want_maps, (maps, want_maps)
        if len(got["params"]) == len(expected["params"]):
            assert got["params"] == expected["params"]
            assert got["param_args"] == expected["param_args"]


def test_dynamic_plans_refuse_sizes_they_cannot_take() -> None:
    dynamic, _ = _dynamic_and_static("gated_mlp", 1)
    module = _native.compile_module(dynamic, chip="sm_90a", fmt="isa", disk_cache=False)
    with pytest.raises(errors.CompilationError, match="reads size 0 of 0 given"):
        module.launch_plan("kernel", [])
    with pytest.raises(errors.CompilationError, match="must not be negative"):
        module.launch_plan("kernel", [-1, 512, 384, 512, 384, 512, -1, 384])
    assert module.launch_plan("nothing", [1]) is None  # no such function: no plan
    # A grid past what CUDA launches: said, not wrapped around.
    with pytest.raises(errors.CompilationError, match="1 to 2"):
        module.launch_plan("kernel", [1 << 40, 512, 384, 512, 384, 512, 1 << 40, 384])
    # The plan's template is not a plan a runtime can replay.
    with pytest.raises(errors.ArgumentError, match="depends on its arguments' sizes"):
        _native.LaunchPlan(module, module.launch_plan("kernel"))
    # With no rows, the guard leaves the launch out (as the host code does).
    assert module.launch_plan("kernel", [0, 512, 384, 512, 384, 512, 0, 384])["launches"] == []


def test_rows_hints_are_checked_and_set_the_tuning_class() -> None:
    from fusedops import tune

    dynamic, _ = _dynamic_and_static("gated_mlp", 1)
    assert tune.candidates(dynamic, "sm_90a")["key"]["shape_class"].startswith("M<=64 ")
    static, _ = cg.gated_mlp_source([40, 512], [384, 512], "bf16", activation="silu")
    assert tune.candidates(static, "sm_90a")["key"]["shape_class"].startswith("M<=64 ")
    with pytest.raises(ArgumentError, match="'rows_hint' must be an integer"):
        cg.gated_mlp_source([None, 512], [384, 512], "bf16", activation="silu", rows_hint=-3)
    with pytest.raises(ArgumentError, match="rows are static"):
        cg.gated_mlp_source([8, 512], [384, 512], "bf16", activation="silu", rows_hint=64)
    with pytest.raises(ArgumentError, match="the row sizes"):
        _native.build_op_source(
            json.dumps(
                {
                    "op": "gated_mlp",
                    "x_shape": [8, None],
                    "n": 8,
                    "dtype": "bf16",
                    "activation": "silu",
                }
            )
        )
