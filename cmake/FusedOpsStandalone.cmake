#===- FusedOpsStandalone.cmake - MLIR and LLVM from their archives -------===#
#
# Debian's static MLIR and LLVM libraries name the shared libMLIR and
# libLLVM (the `MLIR` and `LLVM` targets) among their own dependencies, so
# linking them still needs those libraries at run time. For the standalone
# libraries of the Python wheel (FUSEDOPS_STANDALONE_LIBS) this drops the two
# from every archive's dependencies and gives, in FUSEDOPS_STATIC_ARCHIVES,
# the archives that provide what they provided; link them as one group and
# the linker takes only the objects something uses. zlib and zstd come from
# their archives too (libzstd-dev, zlib1g-dev; utils/build-wheel.sh checks
# what the libraries need).
#
#===----------------------------------------------------------------------===#
set(MLIR_LINK_MLIR_DYLIB OFF)
set(LLVM_LINK_LLVM_DYLIB OFF)
# LLVM's package config found the shared zlib, and Debian's LLVMSupport
# names a zstd target its config does not define.
find_package(ZLIB REQUIRED)
find_library(FUSEDOPS_ZLIB_ARCHIVE NAMES libz.a REQUIRED)
set_target_properties(ZLIB::ZLIB PROPERTIES
  IMPORTED_LOCATION ${FUSEDOPS_ZLIB_ARCHIVE}
  IMPORTED_LOCATION_RELEASE ${FUSEDOPS_ZLIB_ARCHIVE})
find_library(FUSEDOPS_ZSTD_ARCHIVE NAMES libzstd.a REQUIRED)
if(NOT TARGET zstd::libzstd_shared)
  add_library(zstd::libzstd_shared UNKNOWN IMPORTED)
endif()
set_target_properties(zstd::libzstd_shared PROPERTIES
  IMPORTED_LOCATION ${FUSEDOPS_ZSTD_ARCHIVE}
  IMPORTED_LOCATION_RELEASE ${FUSEDOPS_ZSTD_ARCHIVE})
# Closes the group the C++ libraries open (lib/CAPI, lib/Runtime): the
# archives' order does not matter.
set(CMAKE_CXX_STANDARD_LIBRARIES
  "${CMAKE_CXX_STANDARD_LIBRARIES} -Wl,--end-group")

get_property(fusedops_mlir_libs GLOBAL PROPERTY MLIR_ALL_LIBS)
set(FUSEDOPS_STATIC_ARCHIVES)
foreach(lib IN LISTS fusedops_mlir_libs LLVM_AVAILABLE_LIBS)
  if(NOT TARGET ${lib})
    continue()
  endif()
  get_target_property(type ${lib} TYPE)
  if(NOT type STREQUAL "STATIC_LIBRARY")
    continue()
  endif()
  get_target_property(deps ${lib} INTERFACE_LINK_LIBRARIES)
  if(deps)
    list(REMOVE_ITEM deps LLVM MLIR "$<LINK_ONLY:LLVM>" "$<LINK_ONLY:MLIR>")
    set_target_properties(${lib} PROPERTIES INTERFACE_LINK_LIBRARIES "${deps}")
  endif()
  # Tools' and tests' libraries provide nothing the compiler uses.
  if(lib MATCHES "Test|CAPI|BOLT|Exegesis|TableGen|Tblgen|Lsp|Fuzz|Reduce|Query|PDLL|OptLib|OptMain|JitRunner|runner_utils|async_runtime|arm_sme|SparseTensorRuntime")
    continue()
  endif()
  # Debian imports them for its RelWithDebInfo configuration.
  set(location)
  foreach(config RELWITHDEBINFO RELEASE NOCONFIG "")
    if(config)
      get_target_property(location ${lib} IMPORTED_LOCATION_${config})
    else()
      get_target_property(location ${lib} IMPORTED_LOCATION)
    endif()
    if(location)
      break()
    endif()
  endforeach()
  if(location AND EXISTS "${location}")
    list(APPEND FUSEDOPS_STATIC_ARCHIVES "${location}")
  endif()
endforeach()
