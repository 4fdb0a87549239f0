#!/usr/bin/env bash
# Prepares, on a machine with the package registry, the WHEELS_DIR that bench/gpu_sweep.sh takes to a GPU
# machine without one (Python 3.12, x86-64, CUDA 13 torch already there):
#   bash bench/gpu_wheels.sh [WHEELS_DIR]      # default .whl (ignored by git); about 20 MB
# What the sweep needs beyond such a machine's torch/transformers/accelerate: ComfyUI's torchsde, the
# trainer's diffusers, bitsandbytes (trimmed to its CUDA 13 libraries: the full wheel is 43 MB), DeepSpeed
# (built here as a pure-Python wheel, ops compiled on first use) and its pydantic/hjson, and the ComfyUI
# 0.8.0 source tarball from ../shared/comfyui/. Needs .venv (make setup): DeepSpeed's build imports torch.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "${1:-.whl}"
dir=$(realpath "${1:-.whl}")
platform=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
          --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps "${platform[@]}" -d "$dir" torchsde trampoline diffusers bitsandbytes \
    pydantic annotated-types typing-inspection typing-extensions hjson
core=$(unzip -p "$dir"/pydantic-2*.whl '*/METADATA' | sed -n 's/^Requires-Dist: pydantic-core==\(.*\)$/\1/p')
python3 -m pip download -q --no-deps "${platform[@]}" -d "$dir" "pydantic-core==$core"

# bitsandbytes: keep the CPU and CUDA 13 libraries only
trim=$(mktemp -d)
for wheel in "$dir"/bitsandbytes-*.whl; do
    (cd "$trim" && unzip -q "$wheel" && rm -f bitsandbytes/libbitsandbytes_cuda1[12]*.so \
        bitsandbytes/libbitsandbytes_rocm*.so bitsandbytes/libbitsandbytes_xpu*.so)
    rm "$wheel"
    (cd "$trim" && zip -q -r "$wheel" .)
done
rm -rf "$trim"

# DeepSpeed publishes source only: a pure-Python wheel (DS_BUILD_OPS=0: ops are compiled where they run)
src=$(mktemp -d)
.venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$src" deepspeed
tar xzf "$src"/deepspeed-*.tar.gz -C "$src"
DS_BUILD_OPS=0 .venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$dir" "$src"/deepspeed-*/
rm -rf "$src"

cp ../shared/comfyui/comfyui-*.tar.gz "$dir"/
du -sh "$dir"
