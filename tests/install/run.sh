#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: run.sh BUILD_DIR
#
# Installs BUILD_DIR into a temporary prefix and checks that programs outside the tree build
# and run against it: with `pkg-config --cflags --libs weft` (shared), with
# `pkg-config --static` of weft-static (libweft.a), and with CMake's find_package(weft CONFIG) (weft::weft
# and weft::weft_static). Then moves the prefix elsewhere and does it all again, since both
# weft.pc and the CMake package must be relocatable. When a C++ compiler is there (CXX, or c++
# on the PATH), a C++17 program using the installed weft.hpp is built the same two ways.
# When the build has libweft_mpi (weft-mpi.pc installed), a program using it is built with
# `pkg-config weft-mpi` and with weft::weft_mpi as well, and run as a single MPI process.
# Exits non-zero on the first failure.
#
# Environment: CMAKE (default cmake), CC (default cc), CXX (default c++ if found; empty: no
# C++ consumer), PKG_CONFIG (default pkg-config).
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmake=${CMAKE:-cmake}
pkg_config=${PKG_CONFIG:-pkg-config}
export CC=${CC:-cc}
if [[ -z ${CXX+set} ]]; then
    CXX=$(command -v c++ || true)
fi
export CXX

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source=tests/shell_helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/../shell_helpers.sh"

# Runs a consumer program and checks that it says ok.
expect_ok() {
    local out
    out=$("$@") || die "$* exited with $?"
    [[ $out == ok* ]] || die "$* printed '$out'"
}

# Sets $libdir and $pcdir for the prefix $1 and checks the installed files.
check_layout() {
    local prefix=$1 pc
    [[ -f $prefix/include/weft.h ]] || die "no include/weft.h in $prefix"
    [[ -f $prefix/include/weft.hpp ]] || die "no include/weft.hpp in $prefix"
    pc=$(find "$prefix" -name weft.pc -path '*/pkgconfig/*' | head -n 1)
    [[ -n $pc ]] || die "no weft.pc in $prefix"
    pcdir=$(dirname "$pc")
    libdir=$(dirname "$pcdir")
    [[ -f $libdir/libweft.a ]] || die "no libweft.a in $libdir"
    [[ -L $libdir/libweft.so ]] || die "no libweft.so link in $libdir"
    [[ -f $libdir/cmake/weft/weft-config.cmake ]] || die "no CMake package in $libdir/cmake/weft"
    [[ -f $pcdir/weft-static.pc ]] || die "no weft-static.pc in $pcdir"
    if grep -q "$prefix" "$pc" "$pcdir/weft-static.pc"; then
        die "weft.pc or weft-static.pc names its prefix $prefix: not relocatable"
    fi
}

build_with_pkg_config() {
    local prefix=$1 out=$2 cflags libs static_libs
    check_layout "$prefix"
    export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    [[ $("$pkg_config" --variable=libdir weft) -ef $libdir ]] ||
        die "pkg-config's libdir is not $libdir"
    read -ra cflags <<<"$("$pkg_config" --cflags weft)"
    read -ra libs <<<"$("$pkg_config" --libs weft)"
    # The README's static command, word for word but for the compiler's own warnings.
    read -ra static_libs <<<"$("$pkg_config" --static --libs weft-static)"

    mkdir -p "$out"
    quiet "$CC" -std=c11 -Wall -Wextra -Werror -pedantic "${cflags[@]}" "$here/consumer.c" \
        -o "$out/app" "${libs[@]}"
    LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} expect_ok "$out/app"
    echo "ok: pkg-config consumer, shared ($prefix)"

    quiet "$CC" -std=c11 -Wall -Wextra -Werror -pedantic "${cflags[@]}" "$here/consumer.c" \
        -o "$out/app_static" "${static_libs[@]}"
    if readelf -d "$out/app_static" | grep -q 'libweft\.so'; then
        die "the static consumer needs libweft.so"
    fi
    if ldd "$out/app_static" | grep -q 'libweft'; then
        die "ldd: the static consumer loads libweft: $(ldd "$out/app_static")"
    fi
    expect_ok "$out/app_static"
    echo "ok: pkg-config consumer, static ($prefix)"

    # The README's hello-world, with its two commands as printed there (-std=c11, pkg-config,
    # whose output is split into words on purpose).
    # shellcheck disable=SC2046
    local hello=$here/../../tools/examples/hello.c out_h
    quiet "$CC" -std=c11 "$hello" $("$pkg_config" --cflags --libs weft) -o "$out/hello"
    out_h=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$out/hello") ||
        die "hello exited with $?"
    [[ $out_h == "sum = 2.076674, from "* ]] || die "hello printed: $out_h"
    # shellcheck disable=SC2046
    quiet "$CC" -std=c11 "$hello" $("$pkg_config" --static --cflags --libs weft-static) \
        -o "$out/hello-static"
    if ldd "$out/hello-static" | grep -q 'libweft'; then
        die "ldd: the static hello loads libweft: $(ldd "$out/hello-static")"
    fi
    out_h=$("$out/hello-static") || die "hello-static exited with $?"
    [[ $out_h == "sum = 2.076674, from "* ]] || die "hello-static printed: $out_h"
    echo "ok: the README's hello, shared and static ($prefix)"

    if [[ -n $CXX ]]; then
        quiet "$CXX" -std=c++17 -Wall -Wextra -Werror -pedantic "${cflags[@]}" \
            "$here/consumer.cpp" -o "$out/app_cxx" "${libs[@]}"
        LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} expect_ok "$out/app_cxx"
        echo "ok: pkg-config consumer, C++ ($prefix)"
    fi

    if [[ -f $pcdir/weft-mpi.pc ]]; then
        [[ -f $prefix/include/weft_mpi.h ]] || die "weft-mpi.pc without include/weft_mpi.h"
        if grep -q "$prefix" "$pcdir/weft-mpi.pc"; then
            die "weft-mpi.pc names its prefix $prefix: not relocatable"
        fi
        read -ra cflags <<<"$("$pkg_config" --cflags weft-mpi)"
        read -ra libs <<<"$("$pkg_config" --libs weft-mpi)"
        quiet "$CC" -std=c11 -Wall -Wextra -Werror "${cflags[@]}" "$here/consumer_mpi.c" \
            -o "$out/app_mpi" "${libs[@]}"
        LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} mpi_env expect_ok "$out/app_mpi"
        echo "ok: pkg-config consumer of weft-mpi ($prefix)"
    fi
}

# Runs a command as a single MPI process: Open MPI wants to be told that root may run it.
mpi_env() {
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$@"
}

build_with_cmake() {
    local prefix=$1 out=$2 expect_mpi=OFF cxx=()
    if [[ -n $(find "$prefix" -name weft-mpi.pc) ]]; then
        expect_mpi=ON
    fi
    if [[ -n $CXX ]]; then
        cxx=(-DWEFT_CONSUMER_CXX=ON "-DCMAKE_CXX_COMPILER=$CXX")
    fi
    quiet "$cmake" -S "$here/cmake" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Release -DWEFT_EXPECT_MPI=$expect_mpi "${cxx[@]}"
    grep -q "^weft_DIR:PATH=$prefix/" "$out/CMakeCache.txt" ||
        die "find_package(weft) did not find the package under $prefix"
    quiet "$cmake" --build "$out"
    # CMake links the consumer with an rpath to the prefix: no LD_LIBRARY_PATH needed.
    expect_ok "$out/app"
    expect_ok "$out/app_static"
    echo "ok: CMake consumer, weft::weft and weft::weft_static ($prefix)"
    if [[ $expect_mpi == ON ]]; then
        mpi_env expect_ok "$out/app_mpi"
        echo "ok: CMake consumer, weft::weft_mpi ($prefix)"
    fi
    if [[ -n $CXX ]]; then
        expect_ok "$out/app_cxx"
        echo "ok: CMake consumer, C++ ($prefix)"
    fi
}

prefix=$work/prefix
quiet "$cmake" --install "$build" --prefix "$prefix"
echo "ok: installed into $prefix"
(
    build_with_pkg_config "$prefix" "$work/pc1"
    build_with_cmake "$prefix" "$work/cmake1"
)

moved=$work/elsewhere/prefix
mkdir -p "$(dirname "$moved")"
mv "$prefix" "$moved"
echo "ok: moved the prefix to $moved"
(
    build_with_pkg_config "$moved" "$work/pc2"
    build_with_cmake "$moved" "$work/cmake2"
)
echo "ok: install test passed"
