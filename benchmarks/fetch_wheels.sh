#!/bin/sh
# Downloads, here (with network), the wheels that benchmarks/gpu_check.py
# installs on a GPU machine that has JAX and PyTorch but no Keras and no
# network: Keras at its pin (constraints.txt) and the two dependencies of
# Keras that machine lacks, namex and optree (its Python 3.12 image already
# has numpy, h5py, ml-dtypes, absl-py, rich, packaging, pillow, matplotlib
# and scikit-learn). When constraints.txt pins pydantic, it and its
# dependencies too (that machine has no pydantic). CPython 3.12, manylinux
# x86_64, into .whl/ (git-ignored; about 3 MB, 6 MB with pydantic).
# WHEEL_PYTHON and WHEEL_DIR choose another Python version and folder
# (benchmarks/rehearse_gpu_check.sh does).
# Usage: sh benchmarks/fetch_wheels.sh [PYTHON]
set -eu
PYTHON=${1:-python3}
cd "$(dirname "$0")/.."
WHEEL_PYTHON=${WHEEL_PYTHON:-3.12}
WHEEL_DIR=${WHEEL_DIR:-.whl}
KERAS=$(sed -n 's/^keras==//p' constraints.txt)
PYDANTIC=$(sed -n 's/^pydantic==//p' constraints.txt)
mkdir -p "$WHEEL_DIR"
rm -f "$WHEEL_DIR"/*.whl

download() {
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version "$WHEEL_PYTHON" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d "$WHEEL_DIR" "$@"
}

download "keras==$KERAS" namex optree
if [ -n "$PYDANTIC" ]; then
    download "pydantic==$PYDANTIC"
    # pydantic pins its compiled core exactly; typing-extensions is there.
    CORE=$(unzip -p "$WHEEL_DIR"/pydantic-"$PYDANTIC"-*.whl '*/METADATA' |
        sed -n 's/^Requires-Dist: pydantic-core==\([^ ;]*\).*/\1/p')
    download "pydantic-core==$CORE" annotated-types typing-inspection
fi
ls -l "$WHEEL_DIR"
du -sh "$WHEEL_DIR"
