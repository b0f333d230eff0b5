#!/usr/bin/env bash
# The layering of docs/DESIGN.md ("Layers"), checked on the sources and on the
# compiled objects. $1: the build tree's layers.txt (cmake/layers.cmake writes
# the table of what each layer may use and each layer's object files).
#   1. every #include "..." of a file in src/<layer>/ names a public header
#      (include/slidesparse/<L>.h) or an interface header
#      (src/<L>/include/<L>/...) of <layer> or of a layer it may use, or a
#      private header of its own folder (no "..");
#   2. every public header includes only public headers of layers its own
#      layer may use;
#   3. every symbol a layer's objects use from another layer's objects is
#      defined by a layer it may use (a declaration written by hand instead of
#      an include is caught here).
# Prints each violation and exits 1; "ok: ..." lines otherwise.
set -uo pipefail
table=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -f $table ]] || { echo "FAIL: no layer table at $table"; exit 1; }
declare -A uses objs
layers=()
while read -r kind l rest; do
  case $kind in
    uses) layers+=("$l"); uses[$l]=" $rest " ;;
    objects) objs[$l]+=" $rest" ;;
  esac
done <"$table"
bad=0
fail() { echo "FAIL: $*"; bad=1; }
is_layer() { [[ " ${layers[*]} " == *" $1 "* ]]; }
may_use() { [[ $1 == "$2" || ${uses[$1]} == *" $2 "* ]]; } # may layer $1 use layer $2?
# The layer a public header belongs to: slidesparse/<layer>.h, compress24.h (sparse),
# slidesparse.h (every layer).
public_layer() {
  case $1 in
    slidesparse.h) echo ALL ;;
    slidesparse/compress24.h) echo sparse ;;
    slidesparse/*.h) local b=${1#slidesparse/}; echo "${b%.h}" ;;
  esac
}
may_include_public() { # layer header
  local p; p=$(public_layer "$2")
  if [[ $p == ALL ]]; then
    for d in "${layers[@]}"; do may_use "$1" "$d" || return 1; done
    return 0
  fi
  [[ -n $p ]] && is_layer "$p" && may_use "$1" "$p"
}

# --- 1. includes of the library's sources -----------------------------------------------
n_inc=0
bad0=$bad
for l in "${layers[@]}"; do
  [[ -d $root/src/$l ]] || { fail "layer $l has no folder src/$l"; continue; }
  while IFS= read -r -d '' f; do
    rel=${f#"$root"/}
    while IFS= read -r inc; do
      n_inc=$((n_inc + 1))
      first=${inc%%/*}
      if [[ $inc == *..* ]]; then
        fail "$rel: #include \"$inc\" leaves its folder"
      elif [[ $inc == slidesparse.h || $inc == slidesparse/* ]]; then
        may_include_public "$l" "$inc" || fail "$rel: #include \"$inc\": layer $l may not use $(public_layer "$inc")"
      elif [[ $inc == */* ]] && is_layer "$first" && [[ -f $root/src/$first/include/$inc ]]; then
        may_use "$l" "$first" || fail "$rel: #include \"$inc\": layer $l may not use layer $first"
      elif [[ -f $(dirname "$f")/$inc || -f $root/src/$l/$inc ]]; then
        : # a private header of its own folder
      elif is_layer "$first"; then
        fail "$rel: #include \"$inc\": not an interface header of $first (src/$first/include/$inc): private to src/$first"
      fi # else a third-party header spelled with quotes (cutlass/..., cute/...)
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
  done < <(find "$root/src/$l" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0)
done
# A folder of src/ that is no layer would escape every check.
for d in "$root"/src/*/; do
  d=$(basename "$d")
  is_layer "$d" || fail "src/$d is not a layer of cmake/layers.cmake"
done
[[ $bad == "$bad0" ]] && echo "ok: $n_inc includes of src/ checked against the layer table"

# --- 2. public headers ------------------------------------------------------------------------
bad0=$bad
for f in "$root"/include/slidesparse/*.h; do
  h=slidesparse/$(basename "$f")
  l=$(public_layer "$h")
  is_layer "$l" || { fail "$h: no layer named $l"; continue; }
  while IFS= read -r inc; do
    may_include_public "$l" "$inc" || fail "$h: includes $inc: layer $l may not use $(public_layer "$inc")"
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\(slidesparse[^"]*\)".*/\1/p' "$f")
done
[[ $bad == "$bad0" ]] && echo "ok: public headers include only what their layer may use"

# --- 3. symbols -------------------------------------------------------------------------------
command -v nm >/dev/null || { echo "FAIL: nm not found"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for l in "${layers[@]}"; do
  [[ -n ${objs[$l]:-} ]] || { fail "layer $l: no objects in $table"; continue; }
  # shellcheck disable=SC2086
  nm --defined-only ${objs[$l]} 2>/dev/null | awk -v l="$l" 'NF == 3 && $2 ~ /^[TDBRVW]$/ {print $3, l}' >>"$T/defined"
  # shellcheck disable=SC2086
  nm -u ${objs[$l]} 2>/dev/null | awk -v l="$l" '$1 == "U" || $1 == "w" {print $2, l}' >>"$T/used"
done
sort -u "$T/defined" -o "$T/defined"
bad0=$bad
while read -r sym l d; do
  may_use "$l" "$d" || fail "layer $l uses $sym, defined by layer $d"
done < <(awk 'NR == FNR {def[$1] = $2; next} ($1 in def) && def[$1] != $2 {print $1, $2, def[$1]}' \
           "$T/defined" "$T/used" | sort -u)
[[ $bad == "$bad0" ]] && echo "ok: $(wc -l <"$T/used") symbol uses of the layers' objects checked"
[[ $bad == 0 ]] && echo "ok: layering holds" || { echo "FAIL: layering broken (docs/DESIGN.md, Layers)"; exit 1; }
