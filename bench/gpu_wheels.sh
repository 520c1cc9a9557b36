#!/usr/bin/env bash
# Download the wheels of bench/gpu-wheels.txt for the lent GPU machine (CPython 3.12, manylinux
# x86-64; no dependency resolution: the list names every one) into DIR, by default
# artifacts/gpu-wheels (git-ignored; the device tool carries it). Run it where PyPI is reachable:
#
#     bash bench/gpu_wheels.sh [DIR]
#
# docs/gpu.md gives the device command that installs them there.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-artifacts/gpu-wheels}
python=${PYTHON:-.venv/bin/python}
rm -rf "$dir"
mkdir -p "$dir"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 any; do
  platforms+=(--platform "$p")
done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dir" -r bench/gpu-wheels.txt
wanted=$(grep -cE '^[A-Za-z]' bench/gpu-wheels.txt)
got=$(find "$dir" -name '*.whl' | wc -l)
if [ "$got" -ne "$wanted" ]; then
  echo "gpu_wheels: $got wheels in $dir for $wanted lines of bench/gpu-wheels.txt" >&2
  exit 1
fi
du -b "$dir"/*.whl | sort -k2
echo "$(du -cb "$dir"/*.whl | tail -1 | cut -f1) bytes in $got wheels in $dir"
