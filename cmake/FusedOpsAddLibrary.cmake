#===- FusedOpsAddLibrary.cmake - add_fusedops_library ---------------------===#
#
# add_fusedops_library(name sources... [DEPENDS ...] [LINK_LIBS PUBLIC ...])
#
# An MLIR library of ours. MLIR libraries are linked through libMLIR.so
# (MLIR_LINK_MLIR_DYLIB): Debian ships it, links are fast on small machines,
# and the GPU machine can run our tools by carrying that one library. The
# library joins the `FusedOpsTargets` export set installed by
# FusedOpsInstall.cmake instead of MLIR's own.
#
#===----------------------------------------------------------------------===#
function(add_fusedops_library name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;LINK_LIBS" ${ARGN})
  set(mlir_libs ${ARG_LINK_LIBS})
  list(REMOVE_ITEM mlir_libs PUBLIC PRIVATE INTERFACE)
  set(own_libs)
  set(upstream_libs)
  foreach(lib ${mlir_libs})
    if(lib MATCHES "^FusedOps")
      list(APPEND own_libs ${lib})
    else()
      list(APPEND upstream_libs ${lib})
    endif()
  endforeach()
  add_mlir_library(${name} ${ARG_UNPARSED_ARGUMENTS}
    EXCLUDE_FROM_LIBMLIR
    DISABLE_INSTALL
    DEPENDS ${ARG_DEPENDS})
  target_link_libraries(${name} PUBLIC ${own_libs})
  mlir_target_link_libraries(${name} PUBLIC ${upstream_libs})
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${FUSEDOPS_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${FUSEDOPS_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  set_property(GLOBAL APPEND PROPERTY FUSEDOPS_EXPORTS ${name})
endfunction()
