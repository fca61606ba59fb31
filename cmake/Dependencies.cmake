# System dependencies, all from Debian packages installed by scripts/bootstrap.sh.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS: prefer Debian's OpenMP build so BLAS and our own loops share one OpenMP pool.
set(_arch_lib /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
set(_arch_inc /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
find_library(SCALPEL_OPENBLAS_LIB NAMES openblas
  PATHS ${_arch_lib}/openblas-openmp NO_DEFAULT_PATH)
find_path(SCALPEL_CBLAS_INCLUDE NAMES cblas.h
  PATHS ${_arch_inc}/openblas-openmp NO_DEFAULT_PATH)
if(NOT SCALPEL_OPENBLAS_LIB OR NOT SCALPEL_CBLAS_INCLUDE)
  message(WARNING "OpenMP build of OpenBLAS not found (libopenblas-openmp-dev); "
                  "falling back to the default libopenblas. Run scripts/bootstrap.sh.")
  find_library(SCALPEL_OPENBLAS_LIB NAMES openblas REQUIRED)
  find_path(SCALPEL_CBLAS_INCLUDE NAMES cblas.h PATH_SUFFIXES openblas REQUIRED)
endif()
message(STATUS "Scalpel: OpenBLAS ${SCALPEL_OPENBLAS_LIB}")
add_library(scalpel_blas INTERFACE)
target_link_libraries(scalpel_blas INTERFACE ${SCALPEL_OPENBLAS_LIB})
target_include_directories(scalpel_blas SYSTEM INTERFACE ${SCALPEL_CBLAS_INCLUDE})

find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(STB REQUIRED IMPORTED_TARGET stb)

# OpenMPI for data-parallel training (core/dist.h). AUTO: used when found (scripts/bootstrap.sh
# installs libopenmpi-dev); OFF: a one-process build; ON: required. Only the C API is used.
set(SCALPEL_MPI "AUTO" CACHE STRING "Data-parallel training on MPI: AUTO (when found), ON (required) or OFF")
set_property(CACHE SCALPEL_MPI PROPERTY STRINGS AUTO ON OFF)
set(SCALPEL_HAVE_MPI OFF)
if(NOT SCALPEL_MPI STREQUAL "OFF")
  set(MPI_CXX_SKIP_MPICXX ON)
  if(SCALPEL_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
  else()
    find_package(MPI QUIET COMPONENTS CXX)
  endif()
  if(MPI_CXX_FOUND)
    set(SCALPEL_HAVE_MPI ON)
    find_program(SCALPEL_MPIEXEC NAMES mpirun mpiexec HINTS ${MPIEXEC_EXECUTABLE})
  endif()
endif()
message(STATUS "Scalpel: MPI data parallelism ${SCALPEL_HAVE_MPI} (SCALPEL_MPI=${SCALPEL_MPI})")
if(SCALPEL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(SCALPEL_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# Eigen for small dense linear algebra. GCC 12 emits false -Wmaybe-uninitialized warnings from its
# own AVX-512 intrinsics when Eigen code is inlined (GCC bug 105593), so targets using Eigen link
# scalpel_eigen, which silences that one warning for them only.
add_library(scalpel_eigen INTERFACE)
target_link_libraries(scalpel_eigen INTERFACE Eigen3::Eigen)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(scalpel_eigen INTERFACE -Wno-maybe-uninitialized)
endif()
