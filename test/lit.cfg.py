# -*- Python -*-
# lit configuration of the fusedops tests (after mlir/examples/standalone).

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "FUSEDOPS"
# The internal shell: the same behaviour with every lit version (lit 23 drops
# the external one).
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.fusedops_obj_root, "test")
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py", "Install", "lit.local.cfg"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%fusedops_src_root", config.fusedops_src_root))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.fusedops_tools_dir, config.llvm_tools_dir]
tools = [
    ToolSubst("fusedops-opt", unresolved="fatal"),
    ToolSubst("fusedops-compile", unresolved="fatal"),
    ToolSubst("fusedops-runner", unresolved="ignore"),
    ToolSubst("fusedops-fuzz", unresolved="ignore"),
    "not",
    "count",
]
llvm_config.add_tool_substitutions(tools, tool_dirs)

if os.access(os.path.join(config.fusedops_tools_dir, "fusedops-fuzz"), os.X_OK):
    config.available_features.add("fusedops-fuzz")

# Upstream mlir-opt re-parses what our passes print (absent where only our
# tools were carried, as on the GPU machine).
if os.access(os.path.join(config.llvm_tools_dir, "mlir-opt"), os.X_OK):
    config.available_features.add("mlir-opt")
    llvm_config.add_tool_substitutions(["mlir-opt"], [config.llvm_tools_dir])

# PTX and cubin tests need ptxas (the CUDA toolkit), GPU tests a GPU.
import shutil

cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
_ptxas = os.path.join(cuda_home, "bin", "ptxas")
if not os.access(_ptxas, os.X_OK):
    _ptxas = shutil.which("ptxas")
if _ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", _ptxas))


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



def _runtime_library(name):
    """The runner library `name` in MLIR's lib dir: the development symlink
    where libmlir-22-dev is installed, else the versioned file (libmlir-22)."""
    for candidate in (name + ".so", name + ".so.22.1"):
        path = os.path.join(config.mlir_lib_dir, candidate)
        if os.path.exists(path):
            return path
    return os.path.join(config.mlir_lib_dir, name + ".so")


# The runner utilities (printMemrefF32, ...) that integration tests load.
config.substitutions.append(("%mlir_runner_utils", _runtime_library("libmlir_runner_utils")))
config.substitutions.append(("%mlir_c_runner_utils", _runtime_library("libmlir_c_runner_utils")))
