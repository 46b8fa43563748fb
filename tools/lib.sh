# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers shared by the scripts that build weft (tools/run, tools/test, bench/run_all.sh,
# bench/stats_cost.sh, tests/fuzz/run.sh); source it, it only defines things.
#
#   WEFT_ROOT                the repository root
#   WEFT_RELEASE_FLAGS       the configuration of the Release tree, build/release, that tools/run
#                            builds and bench/run_all.sh runs: no tests, no sanitizer
#   weft_ensure_packages     installs the Debian packages the build needs, only those missing
#   weft_configure DIR ARGS  configures a build directory (Ninja when there is ninja)
#   weft_build DIR [ARGS]    builds it with every core ($WEFT_JOBS); ARGS go to cmake --build,
#                            e.g. --target NAME

WEFT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# libudev-dev: hwloc.pc lists -ludev for static links (pkg-config --static), and libhwloc-dev
# does not pull it in. libjansson-dev: the suites that parse weft's JSON output.
# clang-format: the formatting check. libopenmpi-dev, openmpi-bin: libweft_mpi and its tests.
# libssl-dev: libcrypto's SHA-1 for the UTS examples (tools/examples/mpi). dpkg-dev, file:
# CPack's DEB generator (dpkg-shlibdeps) and the package test. abigail-tools: the ABI check
# (abidiff, tests/abi). groff-base: the manual pages' check. libomp-dev: LLVM's OpenMP runtime,
# a benchmark peer (bench_fib_libomp, bench_nqueens_libomp, built by clang).
WEFT_PACKAGES=(build-essential cmake pkg-config check libhwloc-dev libudev-dev hwloc libtbb-dev python3
    libuv1-dev wrk curl relacy-dev spin libjansson-dev groff-base
    clang clang-format libomp-dev libopenmpi-dev openmpi-bin libssl-dev dpkg-dev file abigail-tools)

# shellcheck disable=SC2034 # used by the scripts that source this file
WEFT_RELEASE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZE= -DWEFT_WERROR=OFF -DBUILD_TESTING=OFF)

weft_log() {
    printf '\n==> %s\n' "$*"
}

weft_ensure_packages() {
    local pkg status missing=()
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "not a Debian system: not installing anything; the build needs ${WEFT_PACKAGES[*]}"
        return 0
    fi
    for pkg in "${WEFT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [[ $status != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    local sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    weft_log "installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

weft_configure() {
    local dir=$1
    shift
    local generator=()
    # The generator of an existing build directory cannot change; pick one only for a new one.
    if [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
        generator=(-G Ninja)
    fi
    cmake -S "$WEFT_ROOT" -B "$dir" "${generator[@]}" "$@"
}

weft_build() {
    cmake --build "$1" --parallel "${WEFT_JOBS:-$(nproc)}" "${@:2}"
}
