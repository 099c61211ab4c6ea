#===- FusedOpsInstall.cmake - installation and the package config ---------===#
#
# `cmake --install build --prefix P` installs the headers (sources and
# TableGen'd .inc files), the libraries, fusedops-opt and a CMake package, so
# that another MLIR project can use fusedops as a lowering backend:
#
#   find_package(FusedOps CONFIG REQUIRED)   # with -DFusedOps_DIR=P/lib/cmake/fusedops
#   target_link_libraries(my-compiler PRIVATE FusedOps::FusedOpsDialect)
#
#===----------------------------------------------------------------------===#
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set(FUSEDOPS_INSTALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fusedops)

install(DIRECTORY ${FUSEDOPS_SOURCE_DIR}/include/fusedops
                  ${FUSEDOPS_SOURCE_DIR}/include/fusedops-c
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  OPTIONAL
  FILES_MATCHING PATTERN "*.h" PATTERN "*.td")
install(DIRECTORY ${FUSEDOPS_BINARY_DIR}/include/fusedops
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.inc")

get_property(fusedops_exports GLOBAL PROPERTY FUSEDOPS_EXPORTS)
# Read by FusedOpsConfig.cmake.in.
string(REPLACE ";" " " FUSEDOPS_EXPORTED_LIBS "${fusedops_exports}")
install(TARGETS ${fusedops_exports}
  EXPORT FusedOpsTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT FusedOpsTargets
  NAMESPACE FusedOps::
  DESTINATION ${FUSEDOPS_INSTALL_CMAKE_DIR})

configure_package_config_file(
  ${FUSEDOPS_SOURCE_DIR}/cmake/FusedOpsConfig.cmake.in
  ${FUSEDOPS_BINARY_DIR}/lib/cmake/fusedops/FusedOpsConfig.cmake
  INSTALL_DESTINATION ${FUSEDOPS_INSTALL_CMAKE_DIR})
write_basic_package_version_file(
  ${FUSEDOPS_BINARY_DIR}/lib/cmake/fusedops/FusedOpsConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${FUSEDOPS_BINARY_DIR}/lib/cmake/fusedops/FusedOpsConfig.cmake
  ${FUSEDOPS_BINARY_DIR}/lib/cmake/fusedops/FusedOpsConfigVersion.cmake
  DESTINATION ${FUSEDOPS_INSTALL_CMAKE_DIR})
