#===- FusedOpsStandalone.cmake - MLIR and LLVM from their archives -------===#
#
# Debian's static MLIR and LLVM libraries name the shared libMLIR and
# libLLVM (the `MLIR` and `LLVM` targets) among their own dependencies, so
# linking them still needs those libraries at run time. For the standalone
# libraries of the Python wheel (FUSEDOPS_STANDALONE_LIBS) this drops the two
# from every archive's dependencies and gives, in FUSEDOPS_STATIC_ARCHIVES,
# the archives that provide what they provided; link them as one group and
# the linker takes only the objects something uses.
#
#===----------------------------------------------------------------------===#
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
