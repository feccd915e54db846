#!/usr/bin/env bash
# Assemble an ONNX Runtime SDK directory (the official release archive layout: include/ + lib/)
# from what registries reachable here ship:
#   - the shared library from the Python wheel `onnxruntime` (onnxruntime/capi/libonnxruntime.so.X.Y.Z),
#   - the official C/C++ headers from the npm package com.github.asus4.onnxruntime, which carries
#     them inside an iOS framework folder (the headers are platform independent).
# Headers with an older ORT_API_VERSION work with a newer library: the C API is versioned and
# backward compatible, so the library must be at least as new as the headers (checked below).
#
# usage: assemble_onnxruntime_sdk.sh [SDK_DIR]   (default: cpp/build/onnxruntime-sdk)
# env:   PYTHON          interpreter whose onnxruntime wheel provides the library (default: python3)
#        RNNX_ORT_HEADERS_NPM  npm package@version carrying the headers
#                              (default: com.github.asus4.onnxruntime@0.4.9, ORT_API_VERSION 29)
# Prints the SDK directory on stdout. Skips all work when the SDK is already assembled.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk="${1:-$here/../build/onnxruntime-sdk}"
python="${PYTHON:-python3}"
package="${RNNX_ORT_HEADERS_NPM:-com.github.asus4.onnxruntime@0.4.9}"
sdk="$(realpath -m "$sdk")"
stamp="$sdk/.rnnx-sdk-complete"

fail() { echo "assemble_onnxruntime_sdk: $*" >&2; exit 1; }

if [[ -f "$stamp" && -f "$sdk/include/onnxruntime_cxx_api.h" && -e "$sdk/lib/libonnxruntime.so" ]]; then
  echo "$sdk"
  exit 0
fi

# --- the library, from the Python wheel -----------------------------------------------------
capi="$("$python" -c 'import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))' 2>/dev/null)" \
  || fail "the Python package onnxruntime is not importable with '$python' (pip install onnxruntime, or set PYTHON)"
version="$("$python" -c 'import onnxruntime; print(onnxruntime.__version__)')"
library="$capi/libonnxruntime.so.$version"
[[ -f "$library" ]] || library="$(ls "$capi"/libonnxruntime.so.* 2>/dev/null | head -n 1 || true)"
[[ -n "$library" && -f "$library" ]] || fail "no libonnxruntime.so.* in $capi (this onnxruntime wheel does not ship the shared library)"

# --- the headers, from npm ------------------------------------------------------------------
command -v npm >/dev/null || fail "npm is not installed (needed once to download the ONNX Runtime headers); or pass -DONNXRUNTIME_ROOT=<official release archive>"
work="$(mktemp -d "${TMPDIR:-/tmp}/rnnx-ort-sdk.XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "$package" --silent >/dev/null 2>"$work/npm.log") \
  || fail "npm pack $package failed: $(tail -n 1 "$work/npm.log")"
archive="$(ls "$work"/*.tgz | head -n 1)"
# Any one framework slice: the headers are identical across slices.
headers="$(tar tzf "$archive" | grep -E '/onnxruntime\.framework/Headers/onnxruntime_cxx_api\.h$' | head -n 1 || true)"
[[ -n "$headers" ]] || fail "$package does not contain onnxruntime.framework/Headers/onnxruntime_cxx_api.h"
headers="$(dirname "$headers")"
tar xzf "$archive" -C "$work" "$headers"

api="$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\).*/\1/p' "$work/$headers/onnxruntime_c_api.h")"
minor="$(echo "$version" | cut -d. -f2)"
[[ -n "$api" && "$minor" -ge "$api" ]] \
  || fail "headers declare ORT_API_VERSION $api but the library is onnxruntime $version (needs 1.$api or newer)"

# --- assemble (into a temporary sibling, renamed into place: never a half-made SDK) -----------
staging="$sdk.partial.$$"
rm -rf "$staging"
mkdir -p "$staging/include" "$staging/lib"
cp "$work/$headers"/*.h "$staging/include/"
name="$(basename "$library")"
cp "$library" "$staging/lib/$name"
[[ -f "$capi/libonnxruntime_providers_shared.so" ]] && cp "$capi/libonnxruntime_providers_shared.so" "$staging/lib/"
ln -s "$name" "$staging/lib/libonnxruntime.so.1"  # the library's SONAME, what binaries look up
ln -s "$name" "$staging/lib/libonnxruntime.so"    # what the linker looks up
echo "$version" > "$staging/VERSION_NUMBER"
printf 'library: onnxruntime %s (Python wheel, %s)\nheaders: %s (ORT_API_VERSION %s)\n' \
  "$version" "$library" "$package" "$api" > "$staging/SOURCES.txt"
touch "$staging/.rnnx-sdk-complete"
rm -rf "$sdk"
mkdir -p "$(dirname "$sdk")"
mv "$staging" "$sdk"
echo "$sdk"
