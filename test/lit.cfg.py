# -*- Python -*-
# lit configuration of the fusedops tests (after mlir/examples/standalone).

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "FUSEDOPS"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.fusedops_obj_root, "test")
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py", "Install"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%fusedops_src_root", config.fusedops_src_root))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.fusedops_tools_dir, config.llvm_tools_dir]
tools = [
    ToolSubst("fusedops-opt", unresolved="fatal"),
    ToolSubst("fusedops-compile", unresolved="fatal"),
    ToolSubst("fusedops-runner", unresolved="ignore"),
    "not",
    "count",
]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# PTX and cubin tests need ptxas (the CUDA toolkit), GPU tests a GPU.
import shutil

cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
if os.access(os.path.join(cuda_home, "bin", "ptxas"), os.X_OK) or shutil.which("ptxas"):
    config.available_features.add("ptxas")


def _cuda_device_count():
    """Number of GPUs the CUDA driver reports, 0 without a driver."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    if cuda.cuInit(0) != 0:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


if _cuda_device_count() > 0:
    config.available_features.add("cuda")

# The runner utilities (printMemrefF32, ...) that integration tests load.
config.substitutions.append(
    ("%mlir_runner_utils", os.path.join(config.mlir_lib_dir, "libmlir_runner_utils.so")))
config.substitutions.append(
    ("%mlir_c_runner_utils", os.path.join(config.mlir_lib_dir, "libmlir_c_runner_utils.so")))
