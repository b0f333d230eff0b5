#!/usr/bin/env bash
# Installs the build tree that holds the CLI ($1) into a temporary prefix and
# uses it as a program outside the project would: a small C program built
# against the shared library through find_package(slidesparse) and through
# pkg-config, and against the static library through find_package and through
# pkg-config --static; each must run and print what the library computes. The
# installed libslidesparse.so must carry the SONAME of the header's major
# version and export only the functions the installed headers declare.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_install "$1"
build=$(dirname "$B")
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
[[ -f $build/cmake_install.cmake ]] || { fail "no cmake_install.cmake beside $B"; exit 1; }
cc=$(cache CMAKE_C_COMPILER)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
# A sanitized library needs its runtime loaded first: the program is built the same way.
if [[ $(cache SS_SANITIZE) == ON ]]; then
  export CFLAGS="-fsanitize=address,undefined" LDFLAGS="-fsanitize=address,undefined"
fi
P=$T/prefix
run_ok cmake --install "$build" --prefix "$P" || exit 1
so=$P/$libdir/libslidesparse.so
for f in "$so" "$P/$libdir/libslidesparse.a" "$P/include/slidesparse.h" "$P/include/slidesparse/core.h" \
         "$P/$libdir/cmake/slidesparse/slidesparseConfig.cmake" \
         "$P/$libdir/cmake/slidesparse/slidesparseConfigVersion.cmake" "$P/$libdir/pkgconfig/slidesparse.pc" \
         "$P/bin/slidesparse"; do
  [[ -e $f ]] && echo "ok: installed ${f#"$P"/}" || fail "not installed: ${f#"$P"/}"
done

# --- the shared library's ABI -----------------------------------------------------------
version=$(sed -n 's/^#define SS_VERSION_STRING "\(.*\)"/\1/p' "$P/include/slidesparse/core.h")
major=${version%%.*}
[[ -n $version ]] || fail "no SS_VERSION_STRING in the installed core.h"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == "libslidesparse.so.$major" ]] && echo "ok: SONAME $soname" \
  || fail "SONAME '$soname', expected libslidesparse.so.$major"
[[ -f $P/$libdir/libslidesparse.so.$version ]] && echo "ok: libslidesparse.so.$version" \
  || fail "no libslidesparse.so.$version"
nm -D --defined-only "$so" | awk '{print $3}' | sort -u >"$T/exported"
# Every name the headers declare as a function, comments left out.
sed -e 's://.*$::' "$P/include/slidesparse.h" "$P"/include/slidesparse/*.h \
  | grep -v '^[[:space:]]*\(/\?\*\|#\)' | grep -o 'ss_[a-z0-9_]*[[:space:]]*(' | tr -d ' \t(' \
  | sort -u >"$T/declared"
extra=$(comm -23 "$T/exported" "$T/declared")
[[ -z $extra ]] && echo "ok: $(wc -l <"$T/exported") exported symbols, all declared in include/" \
  || fail "exported but not in the public headers: $(echo $extra | head -c 600)"
grep -qx ss_pattern_parse "$T/exported" || fail "ss_pattern_parse not exported"
# The static library does hold internal functions: the shared one must hide them.
internal=$(nm --defined-only "$P/$libdir/libslidesparse.a" 2>/dev/null | awk '$2 == "T" {print $3}' \
           | sort -u | comm -23 - "$T/declared" | head -1)
[[ -n $internal ]] || fail "no internal function in libslidesparse.a to check hiding with"
grep -qx -- "$internal" "$T/exported" && fail "internal $internal exported" || echo "ok: internal $internal hidden"

# --- a program using the installed library ----------------------------------------------
mkdir -p "$T/app"
cat >"$T/app/app.c" <<'C'
#include <slidesparse.h>
#include <stdio.h>
int main(void) {
    ss_pattern p;
    char buf[16];
    if (ss_pattern_parse("2_8", &p) != SS_OK) {
        fprintf(stderr, "%s\n", ss_last_error());
        return 1;
    }
    printf("version %s\n", SS_VERSION_STRING);
    printf("%s K'(160) = %lld\n", ss_pattern_format(p, buf, sizeof buf), (long long)ss_slid_k(p, 160));
    ss_status s = ss_pattern_parse("2_7", &p);
    printf("2_7: %s, error text %s\n", ss_status_name(s), ss_last_error()[0] ? "set" : "empty");
    return 0;
}
C
cat >"$T/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(app LANGUAGES C)
find_package(slidesparse REQUIRED COMPONENTS shared static)
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE slidesparse::slidesparse)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE slidesparse::slidesparse_static)
CM
want=$(printf "version %s\n2_8 K'(160) = 256\n2_7: SS_EINVAL, error text set" "$version")
check_app() { # DESC BINARY SHARED(1|0)
  local needed; needed=$(readelf -d "$2" 2>/dev/null | grep -c 'NEEDED.*libslidesparse\.so')
  if [[ $3 == 1 && $needed != 1 ]]; then fail "$1: not linked to libslidesparse.so"; return; fi
  if [[ $3 == 0 && $needed != 0 ]]; then fail "$1: linked to libslidesparse.so, not the static library"; return; fi
  local got; got=$(LD_LIBRARY_PATH=$P/$libdir "$2" 2>&1)
  [[ $got == "$want" ]] && echo "ok: $1" || fail "$1: printed '$got', expected '$want'"
}
if run_ok cmake -S "$T/app" -B "$T/app/build" -G Ninja -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$P" \
   && run_ok cmake --build "$T/app/build"; then
  check_app "find_package, slidesparse::slidesparse" "$T/app/build/app_shared" 1
  check_app "find_package, slidesparse::slidesparse_static" "$T/app/build/app_static" 0
fi
export PKG_CONFIG_PATH=$P/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
[[ $(pkg-config --modversion slidesparse) == "$version" ]] || fail "pkg-config --modversion: $(pkg-config --modversion slidesparse 2>&1)"
# shellcheck disable=SC2046,SC2086 # pkg-config's output is a list of words
if run_ok "$cc" ${CFLAGS:-} "$T/app/app.c" -o "$T/app_pc" $(pkg-config --cflags --libs slidesparse) ${LDFLAGS:-}; then
  check_app "pkg-config" "$T/app_pc" 1
fi
# Static through pkg-config: the archive by path, then what Libs.private and
# Requires.private add.
# shellcheck disable=SC2046,SC2086
if run_ok "$cc" ${CFLAGS:-} "$T/app/app.c" -o "$T/app_pc_static" $(pkg-config --cflags slidesparse) \
   "$P/$libdir/libslidesparse.a" $(pkg-config --static --libs slidesparse | sed 's/-lslidesparse\b//') ${LDFLAGS:-}; then
  check_app "pkg-config --static" "$T/app_pc_static" 0
fi

echo "$fails failure(s)"
[[ $fails == 0 ]]
