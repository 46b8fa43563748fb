#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: run.sh SOURCE_DIR BUILD_DIR
#
# Builds the Debian packages (packaging/deb.cmake) and proves that they install and work:
#   1. cpack -G DEB: exactly libweft<SOVERSION>, libweft-dev and weft-tools. BUILD_DIR is used
#      when it was configured for /usr without a sanitizer; otherwise a Release tree for /usr is
#      built in a temporary directory.
#   2. dpkg-deb -c / -f / -I: each package holds what it should (every file a plain install
#      makes is in exactly one package, man pages in weft-tools), the runtime package is named
#      after the library's SONAME and has a shlibs file, and Depends are right.
#   3. dpkg --dry-run -i (as root): the packages would install on this system, dependencies
#      included.
#   4. dpkg --root: the packages unpack into an empty temporary root with a dpkg database of its
#      own (no file in two packages); there a C program (and a C++ one) builds against them with
#      pkg-config, and with find_package(weft), and runs; an installed example builds;
#      weft-info runs.
#   5. With WEFT_PACKAGE_SYSTEM_INSTALL=1, as root, on a machine where no weft package is
#      installed (CI: .ci/run sets it): dpkg -i into the system, the same consumer built with a
#      bare `pkg-config --cflags --libs weft` and run without any library path, weft-info from
#      PATH, then dpkg --purge, which must leave none of the files behind.
# Exits 77 (ctest: skipped) when dpkg-deb or cpack is missing, 1 on the first failure.
#
# Environment: CMAKE, CPACK (default cmake, cpack), CC (default cc), CXX (default c++ if
# found; empty: no C++ consumer), PKG_CONFIG (default pkg-config), WEFT_JOBS.
set -euo pipefail

src=$(cd "${1:?usage: run.sh SOURCE_DIR BUILD_DIR}" && pwd)
build=$(cd "${2:?usage: run.sh SOURCE_DIR BUILD_DIR}" && pwd)
cmake=${CMAKE:-cmake}
cpack=${CPACK:-cpack}
pkg_config=${PKG_CONFIG:-pkg-config}
cc=${CC:-cc}
if [[ -z ${CXX+set} ]]; then
    CXX=$(command -v c++ || true)
fi
cxx=$CXX

for tool in dpkg-deb dpkg "$cpack"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool not found: the Debian packages cannot be built or checked here"
        exit 77
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-package.XXXXXX")
system_installed=()
cleanup() {
    if ((${#system_installed[@]} > 0)); then
        dpkg --purge "${system_installed[@]}" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/shell_helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/../shell_helpers.sh"

cache_value() {
    sed -n "s/^$1:[A-Z]*=//p" "$2/CMakeCache.txt"
}

# --- 1. the packages ---

tree=$build
if [[ $(cache_value CMAKE_INSTALL_PREFIX "$build") != /usr || -n $(cache_value WEFT_SANITIZE "$build") ]]; then
    tree=$work/build
    echo "building a Release tree for /usr in $tree (BUILD_DIR is not configured for /usr)"
    quiet "$cmake" -S "$src" -B "$tree" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DCMAKE_INSTALL_PREFIX=/usr -DWEFT_SANITIZE= "-DCMAKE_C_COMPILER=$cc"
fi
quiet "$cmake" --build "$tree" --parallel "${WEFT_JOBS:-2}"

debs=$work/debs
quiet "$cpack" -G DEB -B "$debs" --config "$tree/CPackConfig.cmake"

lib=$(find "$tree/lib" -maxdepth 1 -name 'libweft.so.*.*' -type f | head -n 1)
[[ -n $lib ]] || die "no libweft.so.X.Y.Z in $tree/lib"
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ $soname == libweft.so.* ]] || die "libweft's SONAME is '$soname'"
so=${soname#libweft.so.}
runtime=libweft$so
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$tree/CMakeCache.txt")
version=${version:-$(dpkg-deb -f "$(find "$debs" -maxdepth 1 -name 'libweft-dev_*.deb')" Version)}

mapfile -t found < <(find "$debs" -maxdepth 1 -name '*.deb' -printf '%f\n' | sort)
names=()
for f in "${found[@]}"; do
    names+=("${f%%_*}")
done
# libweft-mpi-dev when the tree has libweft_mpi (MPI found)
mpi_pkg=()
if [[ -f $tree/lib/mpi/weft-mpi.pc ]]; then
    mpi_pkg=(libweft-mpi-dev)
fi
expected="libweft-dev ${mpi_pkg[*]:+${mpi_pkg[*]} }$runtime weft-tools"
[[ "${names[*]}" == "$expected" ]] || die "packages: ${found[*]} (expected $expected)"
deb() {
    find "$debs" -maxdepth 1 -name "$1_*.deb" | head -n 1
}
echo "ok: built ${found[*]}"

# --- 2. contents and control fields ---

arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || "$cc" -print-multiarch)
libdir=usr/lib/$triplet
[[ $(cache_value CMAKE_INSTALL_LIBDIR "$tree") == "lib/$triplet" ]] ||
    die "the packaged tree does not use the multiarch directory lib/$triplet"

declare -A owner=()
contents() { # package -> its regular files and links, without the leading ./
    dpkg-deb -c "$(deb "$1")" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||'
}
for p in "$runtime" libweft-dev weft-tools "${mpi_pkg[@]}"; do
    [[ $(dpkg-deb -f "$(deb "$p")" Architecture) == "$arch" ]] || die "$p is not for $arch"
    while read -r file; do
        [[ -z ${owner[$file]:-} ]] || die "$file is in both ${owner[$file]} and $p"
        owner[$file]=$p
    done < <(contents "$p")
done

expect_in() { # package file...
    local p=$1 f
    shift
    for f in "$@"; do
        [[ ${owner[$f]:-} == "$p" ]] || die "$f is not in $p (it is in '${owner[$f]:-no package}')"
    done
}
expect_in "$runtime" "$libdir/$soname" "$libdir/${lib##*/}" "usr/share/doc/$runtime/copyright"
expect_in libweft-dev usr/include/weft.h usr/include/weft.hpp "$libdir/libweft.so" \
    "$libdir/libweft.a" "$libdir/pkgconfig/weft.pc" "$libdir/pkgconfig/weft-static.pc" \
    "$libdir/cmake/weft/weft-config.cmake" "$libdir/cmake/weft/weft-config-version.cmake" \
    "$libdir/cmake/weft/weft-targets.cmake" usr/share/doc/libweft-dev/copyright
for example in "$src"/tools/examples/*.c; do
    expect_in libweft-dev "usr/share/doc/weft/examples/${example##*/}"
done
expect_in weft-tools usr/bin/weft-info usr/bin/weft-scale usr/share/doc/weft-tools/copyright
runtime_files=$(contents "$runtime" | grep -vc '^usr/share/doc/' || true)
((runtime_files == 2)) || die "$runtime holds more than the library: $(contents "$runtime" | tr '\n' ' ')"

# Every file a plain install makes is in a package; man pages are in weft-tools.
stage=$work/stage
quiet env DESTDIR="$stage" "$cmake" --install "$tree"
while read -r file; do
    [[ -n ${owner[$file]:-} ]] || die "$file is installed but in no package (an install rule without COMPONENT?)"
    if [[ $file == usr/share/man/* ]]; then
        expect_in weft-tools "$file"
    fi
done < <(cd "$stage" && find . -type f -o -type l | sed 's|^\./||' | sort)
echo "ok: contents (each installed file in exactly one package)"

depends_has() { # package pattern
    local d
    d=$(dpkg-deb -f "$(deb "$1")" Depends)
    [[ $d =~ $2 ]] || die "$1 Depends: '$d' lacks $2"
}
depends_has "$runtime" 'libhwloc[0-9]+ '
depends_has "$runtime" 'libc6 '
depends_has libweft-dev "$runtime \\(= $version-[0-9]+\\)"
depends_has libweft-dev 'libhwloc-dev'
depends_has weft-tools "$runtime \\(= $version-[0-9]+\\)"
depends_has weft-tools 'libhwloc[0-9]+ '
shlibs=$(dpkg-deb -I "$(deb "$runtime")" shlibs)
[[ $shlibs == "libweft $so $runtime (>= $version-"* ]] || die "$runtime shlibs: '$shlibs'"
echo "ok: control fields ($runtime: $(dpkg-deb -f "$(deb "$runtime")" Depends))"

# --- 3. installable on this system ---

if ((EUID == 0)); then
    quiet dpkg --dry-run -i "$debs"/*.deb
    echo "ok: dpkg --dry-run -i: the dependencies are satisfied on this system"
else
    echo "not root: dpkg --dry-run -i against the system skipped"
fi

# --- 4. unpacked into a temporary root ---

# Builds and runs the consumers against an installation whose /usr is $1; $2 is prepended to
# the library path at run time (empty for the system).
check_consumers() {
    local usr=$1 runpath=$2 out=$3 cflags libs
    mkdir -p "$out"
    read -ra cflags <<<"$("$pkg_config" --cflags weft)"
    read -ra libs <<<"$("$pkg_config" --libs weft)"
    quiet "$cc" -std=c11 -Wall -Wextra -Werror -pedantic "${cflags[@]}" \
        "$src/tests/install/consumer.c" -o "$out/app" "${libs[@]}"
    local run=(env)
    if [[ -n $runpath ]]; then
        run=(env "LD_LIBRARY_PATH=$runpath")
    fi
    local loaded
    loaded=$("${run[@]}" ldd "$out/app" | sed -n "s/^[[:space:]]*$soname => \([^ ]*\) .*/\1/p")
    # realpath: /lib is /usr/lib on a merged-/usr system
    [[ -n $loaded && $(realpath "$loaded") == $(realpath "$usr/lib/$triplet/$soname") ]] ||
        die "the consumer does not load $usr/lib/$triplet/$soname: $("${run[@]}" ldd "$out/app")"
    [[ $("${run[@]}" "$out/app") == ok* ]] || die "the C consumer failed"
    echo "ok: C consumer built with pkg-config and run ($usr)"
    if [[ -n $cxx ]]; then
        quiet "$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic "${cflags[@]}" \
            "$src/tests/install/consumer.cpp" -o "$out/app_cxx" "${libs[@]}"
        [[ $("${run[@]}" "$out/app_cxx") == ok* ]] || die "the C++ consumer failed"
        echo "ok: C++ consumer built with pkg-config and run ($usr)"
    fi
    local examples=$usr/share/doc/weft/examples
    quiet "$cc" -std=c11 -D_GNU_SOURCE "${cflags[@]}" -I"$examples" "$examples/demo_gather.c" \
        -o "$out/demo_gather" "${libs[@]}" -pthread
    echo "ok: an installed example builds ($examples/demo_gather.c)"
    [[ $("${run[@]}" "$usr/bin/weft-info") == *[0-9]* ]] || die "$usr/bin/weft-info failed"
    echo "ok: $usr/bin/weft-info runs"
}

root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
force=(--force-depends) # the empty root has none of the dependencies
if ((EUID != 0)); then
    force+=(--force-not-root)
fi
# Unpack only: configuring would run the ldconfig of the postinst inside the root (chroot).
quiet dpkg --root="$root" "${force[@]}" --unpack "$debs"/*.deb
for p in "$runtime" libweft-dev weft-tools; do
    status=$(dpkg-query --root="$root" -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == *unpacked ]] || die "$p in the temporary root: '$status'"
done
echo "ok: dpkg --root --unpack into $root"
(
    export PKG_CONFIG_PATH=$root/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    check_consumers "$root/usr" "$root/$libdir" "$work/consumer-root"
    out=$work/cmake-root
    quiet "$cmake" -S "$src/tests/install/cmake" -B "$out" -DCMAKE_PREFIX_PATH="$root/usr" \
        -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_COMPILER=$cc"
    grep -q "^weft_DIR:PATH=$root/$libdir/cmake/weft\$" "$out/CMakeCache.txt" ||
        die "find_package(weft) did not find $root/$libdir/cmake/weft"
    quiet "$cmake" --build "$out"
    [[ $("$out/app") == ok* && $("$out/app_static") == ok* ]] || die "the CMake consumers failed"
    echo "ok: CMake consumers, weft::weft and weft::weft_static ($root/usr)"
)

# --- 5. installed into the system ---

if [[ ${WEFT_PACKAGE_SYSTEM_INSTALL:-0} != 1 ]]; then
    echo "ok: packages checked (set WEFT_PACKAGE_SYSTEM_INSTALL=1, as root, to install them into the system too)"
    exit 0
fi
((EUID == 0)) || die "WEFT_PACKAGE_SYSTEM_INSTALL=1 needs root"
for p in "$runtime" libweft-dev weft-tools "${mpi_pkg[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == *installed* ]]; then
        die "$p is installed on this system already: not replacing it"
    fi
done
system_installed=("$runtime" libweft-dev weft-tools "${mpi_pkg[@]}")
quiet dpkg -i "$debs"/*.deb
for p in "${system_installed[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p") == "install ok installed" ]] || die "$p is not installed"
done
echo "ok: dpkg -i into the system"
(
    unset PKG_CONFIG_PATH LD_LIBRARY_PATH
    check_consumers /usr "" "$work/consumer-system"
    [[ $(command -v weft-info) == /usr/bin/weft-info ]] || die "weft-info is not on PATH"
)
mapfile -t files < <(dpkg -L "${system_installed[@]}" | grep -v '^/\.$' | sort -u)
quiet dpkg --purge "${system_installed[@]}"
system_installed=()
for f in "${files[@]}"; do
    if [[ -f $f && ! -d $f ]]; then
        die "$f is still there after dpkg --purge"
    fi
done
echo "ok: dpkg --purge removed every file"
