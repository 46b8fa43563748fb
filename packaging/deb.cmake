# SPDX-License-Identifier: MIT
# Debian packages, with CPack's DEB generator (docs/packaging.md):
#
#   cmake -S . -B build/package -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
#         -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build/package -j2
#   (cd build/package && cpack -G DEB)
#
# One package per install component:
#   runtime  libweft<SOVERSION>  the shared library, named after its SONAME as Debian's policy
#                                for libraries asks, so that two SONAMEs can be installed at once
#   dev      libweft-dev         headers (weft.h, weft.hpp), libweft.a, the libweft.so link,
#                                weft.pc, weft-static.pc, the CMake package, the examples' sources
#   tools    weft-tools          weft-info, weft-scale and their man pages
#   mpi      libweft-mpi-dev     when MPI was found: libweft_mpi (shared and static),
#                                weft_mpi.h, weft-mpi.pc and its CMake targets, in one package,
#                                since it is an optional part that depends on Open MPI's -dev
# Depends: computed by dpkg-shlibdeps from the ELF files (libc6, libhwloc15, ...) where it is
# installed, plus the exact version of libweft<SOVERSION> for the two others.
#
# Included from the top-level CMakeLists.txt after every install rule. tests/package/run.sh
# builds and checks the packages (ctest -L package).

get_target_property(WEFT_SOVERSION weft SOVERSION)
set(WEFT_RUNTIME_PACKAGE "libweft${WEFT_SOVERSION}")

if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    # The packages install under /usr whatever the prefix, but GNUInstallDirs chooses the
    # multiarch library directory (lib/<triplet>) only for the /usr prefix.
    message(STATUS "weft: for Debian packages, configure with -DCMAKE_INSTALL_PREFIX=/usr "
                   "(libraries then go to ${CMAKE_INSTALL_LIBDIR} under /usr)")
endif()

set(CPACK_PACKAGE_NAME "weft")
set(CPACK_PACKAGE_VENDOR "weft")
set(CPACK_PACKAGE_CONTACT "weft maintainers <weft@localhost>")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")

find_program(WEFT_DPKG_DEB dpkg-deb)
if(WEFT_DPKG_DEB)
    set(CPACK_GENERATOR "DEB")
else()
    set(CPACK_GENERATOR "TGZ")
endif()

set(CPACK_COMPONENTS_ALL runtime dev tools)
if(TARGET weft_mpi)
    list(APPEND CPACK_COMPONENTS_ALL mpi)
endif()
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/weft/weft")
# Depends from the ELF files. weft-tools needs libweft.so.SOVERSION, which no installed package
# provides yet: dpkg-shlibdeps finds it in the build tree, as a private library.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${PROJECT_BINARY_DIR}/lib")
set(_weft_exact "${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "${WEFT_RUNTIME_PACKAGE}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION "libs")
# A shlibs control file for every package holding a shared library (only the runtime one), so
# that dpkg-shlibdeps of programs built against weft finds the package. ">=": any later
# version with the same SONAME will do (docs/packaging.md, "ABI").
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# Each description follows the project's one-line summary (CPack puts it first).
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "The shared library. weft runs tasks on a pool of worker threads that steal
work from each other: futures, promises, fork-join, parallel loops, gathers,
waits and completion sets, with every call returning 0 or a negative errno.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME "libweft-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION "libdevel")
# weft.pc requires hwloc.pc (Requires.private), so pkg-config needs libhwloc-dev even for
# dynamic links; static links through weft-static.pc also need libudev-dev (hwloc's static
# dependencies).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${WEFT_RUNTIME_PACKAGE} (= ${_weft_exact}), libhwloc-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "pkgconf | pkg-config, libudev-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF) # no ELF file of its own but libweft.a
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "Development files: the headers (weft.h, and weft.hpp for C++17), the static
library, the pkg-config files (weft, weft-static), the CMake package
(find_package(weft)) and the sources of the examples.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME "weft-tools")
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION "utils")
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "${WEFT_RUNTIME_PACKAGE} (= ${_weft_exact})")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "Tools: weft-info shows the topology, affinity and thread counts as weft sees
them; weft-scale runs a program at 1..N threads and reports its speedup.")

set(CPACK_DEBIAN_MPI_PACKAGE_NAME "libweft-mpi-dev")
set(CPACK_DEBIAN_MPI_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_MPI_PACKAGE_DEPENDS "libweft-dev (= ${_weft_exact}), libopenmpi-dev")
set(CPACK_COMPONENT_MPI_DESCRIPTION
    "weft inside MPI ranks: MPI requests as weft futures (weft_mpi_future) and
lifeline-based global load balancing over ranks (weft_glb_run), with its header,
shared and static libraries, pkg-config file (weft-mpi) and CMake targets.")

# Debian wants the licence of each package as /usr/share/doc/<package>/copyright. Only for
# packages: EXCLUDE_FROM_ALL keeps these out of a plain `cmake --install`.
foreach(_component ${CPACK_COMPONENTS_ALL})
    string(TOUPPER "${_component}" _upper)
    install(FILES "${PROJECT_SOURCE_DIR}/LICENSE"
            DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${_upper}_PACKAGE_NAME}"
            RENAME copyright
            COMPONENT ${_component}
            EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
