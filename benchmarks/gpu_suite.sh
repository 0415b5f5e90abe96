#!/usr/bin/env bash
# Every processing stage at facility sizes on one GPU, in at most 8 minutes: run it as is.
#
#   bash benchmarks/gpu_suite.sh                 # on a machine with a CUDA device and the project's .venv
#   GPU_SUITE_DEVICE=cpu GPU_SUITE_SMALL=1 bash benchmarks/gpu_suite.sh   # the same steps, small, on a CPU
#
# It installs nothing: it uses the project's virtual environment (PYTHON=... to choose another) and the
# packages pyproject.toml declares. Each step prints seconds, ratios to its floor (one forward + inverse
# FFT pass over the same data) and the peak host memory; every step has its own time limit, so one slow
# step cannot take the whole budget. Targets on an H100/H200 class device (issue 18): global motion
# correction <= 0.5 s and 5x5 local <= 1.5 s per 4096² x 40 movie, CTF <= 0.3 s per micrograph,
# alignment + reconstruction + denoising of a 41 x 4096² series (binned 4) <= 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DEVICE=${GPU_SUITE_DEVICE:-cuda}
STEP_SECONDS=${GPU_SUITE_STEP_SECONDS:-150}  # three steps: within the 8 minutes

if [[ ${GPU_SUITE_SMALL:-0} == 1 ]]; then
    MOVIES=(256x8)
    EER=(--size 256 --eer-frames 80 --group 10)
    SERIES=(--sizes 256 --volumes 32 --patch 32 --padding 8 --no-astra)
else
    MOVIES=(1024x20 4096x40)
    EER=(--size 4096 --eer-frames 80 --group 2)  # 40 output frames (a real tilt has 400+ EER frames)
    SERIES=(--sizes 4096 --volumes 256 --patch 96 --padding 48 --no-astra)
fi

if [[ $DEVICE == cuda ]]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 2)" || {
        echo "no CUDA device visible to torch: run with GPU_SUITE_DEVICE=cpu for the CPU figures" >&2
        exit 2
    }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

step() {  # step LABEL COMMAND...: run with a time limit, then print its wall time and peak host memory
    local label=$1
    shift
    echo
    echo "== $label"
    local started=$SECONDS
    /usr/bin/time -f "   peak host memory %M KiB" timeout "$STEP_SECONDS" "$@"
    echo "   $label: $((SECONDS - started)) s wall (limit $STEP_SECONDS s)"
}

started=$SECONDS
step "motion correction (global, 5x5 local) and CTF per movie" \
    "$PYTHON" benchmarks/processors_gpu.py --device "$DEVICE" --sizes "${MOVIES[@]}" --repeats 2
step "EER movie decoded into dose-fractionated frames (CPU: tifffile/imagecodecs), against eerfile" \
    "$PYTHON" benchmarks/eer_read.py "${EER[@]}"
step "alignment + reconstruction per series, Topaz denoising per volume" \
    "$PYTHON" benchmarks/reconstruct_denoise.py --device "$DEVICE" "${SERIES[@]}"
echo
echo "gpu suite: $((SECONDS - started)) s in all (budget 480 s)"
