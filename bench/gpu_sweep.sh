#!/usr/bin/env bash
# Issue #15's GPU sweep as one command, for a CUDA machine whose python3 already has torch (and maybe no
# network):
#   bash bench/gpu_sweep.sh OUT_DIR [WHEELS_DIR] [SECTION ...]
# SECTION: models generate fastplan train strategies compile (default: all, in that order). Each section runs under its own
# time limit (seconds: $ZIZI_LIMIT_<SECTION>), so a slow or failing one still leaves the others' tables.
# All sections take longer than one 10-minute device call (on an H200: models 50 s, generate about 4 min,
# train 2 min, strategies 1 min, compile 2+ min): split them over calls, e.g. "models generate" then the rest.
# Writes OUT_DIR/<section>.md (the markdown tables, stdout) and OUT_DIR/<section>.log (stderr).
#
# WHEELS_DIR (optional) holds what the machine lacks: wheels, unpacked into a private folder put first on
# PYTHONPATH (nothing is installed into the machine's Python), and comfyui-<version>.tar.gz, the ComfyUI
# the benchmarks import (else $COMFYUI_PATH, else ../shared/comfyui/). Without PyAV (which bundles FFmpeg,
# 35 MB) an empty `av` module stands in: no section reads or writes a video file.
set -uo pipefail
out=${1:?usage: bash bench/gpu_sweep.sh OUT_DIR [WHEELS_DIR] [SECTION ...]}
wheels=${2:-}
shift $(( $# < 2 ? $# : 2 ))
sections=${*:-models generate fastplan train strategies compile}
cd "$(dirname "$0")/.."
mkdir -p "$out"
export PYTHONUNBUFFERED=1

site=$(mktemp -d /tmp/zizi-site.XXXXXX)
if [ -n "$wheels" ]; then
    for wheel in "$wheels"/*.whl; do
        [ -e "$wheel" ] && python3 -m zipfile -e "$wheel" "$site"
    done
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import av" 2>/dev/null; then
    mkdir -p "$site/av"
    echo '"""Stand-in for PyAV (not installed here): the GPU sweep reads and writes no video."""' > "$site/av/__init__.py"
    echo "av: PyAV is not installed; an empty stand-in module is used (no section touches video files)"
fi
if [ -z "${COMFYUI_PATH:-}" ]; then
    tarball=$(ls ${wheels:+"$wheels"/comfyui-*.tar.gz} ../shared/comfyui/comfyui-*.tar.gz 2>/dev/null | head -n 1)
    [ -n "$tarball" ] || { echo "no ComfyUI: set COMFYUI_PATH or put comfyui-<version>.tar.gz in WHEELS_DIR"; exit 2; }
    mkdir -p "$site/comfyui"
    tar xzf "$tarball" -C "$site/comfyui" --strip-components 1
    export COMFYUI_PATH="$site/comfyui"
fi

{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
    nproc
    python3 - <<'EOF'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "cuda", torch.version.cuda,
      "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
for name in ("numpy", "diffusers", "transformers", "accelerate", "bitsandbytes", "deepspeed", "triton"):
    try:
        print(f"{name} {md.version(name)}", end="; ")
    except md.PackageNotFoundError:
        print(f"{name} missing", end="; ")
print()
EOF
    echo "ComfyUI: $COMFYUI_PATH ($(cd "$COMFYUI_PATH" && python3 -c 'import comfyui_version as v; print(v.__version__)' 2>/dev/null || echo '?'))"
} 2>&1 | tee "$out/env.txt"

limit() {  # the section's time limit: $ZIZI_LIMIT_<SECTION> or the default given
    local var="ZIZI_LIMIT_${1^^}"
    echo "${!var:-$2}"
}

run_section() {  # name, default limit, command...
    local name=$1 seconds
    seconds=$(limit "$1" "$2")
    shift 2
    echo
    echo "## $name (limit ${seconds} s): $*"
    local started=$SECONDS
    timeout -k 10 "$seconds" "$@" > "$out/$name.md" 2> "$out/$name.log"
    local rc=$?
    cat "$out/$name.md"
    [ $rc -eq 0 ] || { echo "-- last lines of $name.log:"; tail -n 15 "$out/$name.log"; }
    echo "($name: exit $rc$([ $rc -eq 124 ] && echo ', time limit'), $((SECONDS - started)) s)"
}

for section in $sections; do
    case $section in
        models)   run_section models 100 python3 -m devtools.random_sd15 --full --temporal ;;
        generate) run_section generate 260 python3 bench/generate.py --frames 32 512 --frames-speed 64 --steps 4 20 ;;
        train)    run_section train 150 python3 bench/train_step.py \
                      --configs bf16:off:adamw bf16:on:adamw bf16:on:adamw8bit fp16:on:adamw8bit ;;
        strategies) run_section strategies 210 python3 bench/train_step.py --configs --strategies fsdp deepspeed_zero2 \
                      --row-timeout 100 ;;
        fastplan) run_section fastplan 120 python3 bench/generate.py --live --frames-speed 512 \
                      --interpolate off --context-frames 1 ;;
        compile)  run_section compile 120 python3 bench/generate.py --live --frames-speed 64 --compile ;;
        *) echo "unknown section $section (models generate fastplan train strategies compile)"; exit 2 ;;
    esac
done
