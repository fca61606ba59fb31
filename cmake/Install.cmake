# `cmake --install` (and `make install PREFIX=...`): headers under include/scalpel/<folder>/, the
# static libraries, the study and tool binaries, ScalpelConfig.cmake + ScalpelConfigVersion.cmake
# with imported targets Scalpel::core, ::nn, ::optim, ::data, ::experiments and ::scalpel (all),
# and lib/pkgconfig/scalpel.pc.
#
# The public headers are every .h of core/, nn/, optim/, data/ and experiments/ except the kernels
# (core/kernels/), *_internal.h and the fuzz entry points. A consumer includes them as in this tree
# ("core/tensor.h", or <scalpel/core/tensor.h>). Surgery methods register themselves through static
# objects, so Scalpel::optim links its archive whole ($<LINK_LIBRARY:WHOLE_ARCHIVE>, CMake >= 3.24
# in the consumer too), exactly as in-tree; scalpel.pc does the same with --whole-archive.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(scalpel_core PROPERTIES EXPORT_NAME core)
set_target_properties(scalpel_nn PROPERTIES EXPORT_NAME nn)
set_target_properties(scalpel_optim PROPERTIES EXPORT_NAME optim)
set_target_properties(scalpel_optim_objects PROPERTIES EXPORT_NAME optim_objects)
set_target_properties(scalpel_data PROPERTIES EXPORT_NAME data)
set_target_properties(scalpel_experiments PROPERTIES EXPORT_NAME experiments)
set_target_properties(scalpel_blas PROPERTIES EXPORT_NAME blas)
add_library(scalpel_all INTERFACE)
target_link_libraries(scalpel_all INTERFACE scalpel_experiments scalpel_data scalpel_optim scalpel_nn scalpel_core)
set_target_properties(scalpel_all PROPERTIES EXPORT_NAME scalpel)

install(TARGETS scalpel_core scalpel_nn scalpel_optim scalpel_optim_objects scalpel_data scalpel_experiments
                scalpel_blas scalpel_all
        EXPORT ScalpelTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(dir core nn optim data experiments)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/scalpel/${dir}
          FILES_MATCHING PATTERN "*.h"
          PATTERN "kernels" EXCLUDE PATTERN "fuzz" EXCLUDE PATTERN "*_internal.h" EXCLUDE)
endforeach()

set(scalpel_binaries scalpel-toy scalpel-mtl-toy scalpel-noise scalpel-quadratics scalpel-smooth-mlp scalpel-report
                     scalpel-weight-norm scalpel-multitask scalpel-joint-lm scalpel-data scalpel-aggregate scalpel-bleu
                     scalpel-translation)
foreach(bin ${scalpel_binaries})
  if(TARGET ${bin})
    install(TARGETS ${bin} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The study mains, so that scalpel_add_study (ScalpelConfig.cmake) can rebuild a bundled study with
# a user's own sources linked in.
install(FILES ${PROJECT_SOURCE_DIR}/experiments/toy.cpp ${PROJECT_SOURCE_DIR}/experiments/quadratics.cpp
              ${PROJECT_SOURCE_DIR}/experiments/noise.cpp ${PROJECT_SOURCE_DIR}/experiments/smooth_mlp.cpp
              ${PROJECT_SOURCE_DIR}/experiments/weight_norm.cpp ${PROJECT_SOURCE_DIR}/experiments/multitask.cpp
              ${PROJECT_SOURCE_DIR}/experiments/joint_lm.cpp ${PROJECT_SOURCE_DIR}/experiments/mtl_toy.cpp
              ${PROJECT_SOURCE_DIR}/experiments/translation.cpp
        DESTINATION ${CMAKE_INSTALL_DATADIR}/scalpel/studies)

set(scalpel_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Scalpel)
install(EXPORT ScalpelTargets NAMESPACE Scalpel:: DESTINATION ${scalpel_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ScalpelConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/ScalpelConfig.cmake INSTALL_DESTINATION ${scalpel_cmake_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/ScalpelConfigVersion.cmake VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/ScalpelConfig.cmake ${CMAKE_BINARY_DIR}/ScalpelConfigVersion.cmake
        DESTINATION ${scalpel_cmake_dir})

# pkg-config: the same libraries in link order, the optim archive whole.
get_filename_component(scalpel_openblas_dir ${SCALPEL_OPENBLAS_LIB} DIRECTORY)
file(RELATIVE_PATH scalpel_pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")  # ../.. (or ../../.. for lib/<arch>)
string(REGEX REPLACE "/$" "" scalpel_pc_up "${scalpel_pc_up}")
set(scalpel_pc_sanitize "")
if(SCALPEL_SANITIZE)
  set(scalpel_pc_sanitize " -fsanitize=${SCALPEL_SANITIZE}")  # the archives need the sanitizer runtime
endif()
set(scalpel_pc_mpi "")
if(SCALPEL_HAVE_MPI)  # the core archive calls MPI (core/dist.cpp)
  foreach(lib ${MPI_CXX_LIBRARIES})
    string(APPEND scalpel_pc_mpi " ${lib}")
  endforeach()
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/scalpel.pc.in ${CMAKE_BINARY_DIR}/scalpel.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/scalpel.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
