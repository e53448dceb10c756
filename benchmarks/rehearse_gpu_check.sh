#!/bin/sh
# Rehearses benchmarks/gpu_check.py here, on the CPU, before a GPU session
# spends device time on it: a fresh virtual environment shaped like the GPU
# machine (JAX and the scientific stack, typing-extensions, no TensorFlow,
# no Keras), Keras installed by gpu_check.py from wheels fetched for that
# environment's Python, then
#   1. gpu_check.py --tiny: the preflight and the three parts;
#   2. train_step.py at batch 2 with every row the GPU run has
#      (mixed_bfloat16, and PyTorch's bf16 and torch.compile loops where
#      torch is installed), which --tiny leaves out.
# Needs network (pip); a few minutes and about 1 GB (more with torch).
# Usage: sh benchmarks/rehearse_gpu_check.sh [PYTHON [PACKAGE ...]]
#   sh benchmarks/rehearse_gpu_check.sh python3.12 jax==0.11.2   # its JAX
#   sh benchmarks/rehearse_gpu_check.sh python3.11 torch==2.13.0 # + torch
# REHEARSAL_DIR keeps the environment and results (default: a temp folder).
set -eu
PYTHON=${1:-python3.12}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
WORK=${REHEARSAL_DIR:-$(mktemp -d)}
VENV="$WORK/venv"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet "jax>=0.10" numpy pillow h5py \
    scikit-learn matplotlib absl-py rich packaging ml-dtypes \
    typing-extensions "$@"
VERSION=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WHEEL_PYTHON=$VERSION WHEEL_DIR="$WORK/whl" \
    sh benchmarks/fetch_wheels.sh "$VENV/bin/python" >/dev/null
mkdir -p "$WORK/out" "$WORK/tmp"
# gpu_check.py installs the wheels into $TMPDIR/keras_dhsps_site.
env -u PYTHONPATH TMPDIR="$WORK/tmp" OUT="$WORK/out" \
    "$VENV/bin/python" benchmarks/gpu_check.py --tiny --wheels "$WORK/whl" \
    >"$WORK/out/gpu_check.log"
env PYTHONPATH="$PWD:$WORK/tmp/keras_dhsps_site" KERAS_BACKEND=jax \
    "$VENV/bin/python" benchmarks/train_step.py --models alexnet \
    --batch-size 2 --steps 1 --warmup 1 --pool 4 \
    --output "$WORK/out/train_step_rows.json"
echo "rehearsal passed: $WORK/out"
