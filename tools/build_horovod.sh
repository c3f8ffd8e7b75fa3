#!/usr/bin/env bash
# Build Horovod 0.28.1 (TensorFlow + Gloo, no MPI) into the TF 2.15 venv.
#
# Horovod 0.28.1 (its last release) builds only against TF 2.15 here: TF 2.21's
# wheel lacks headers it needs and no longer has xla_builder.h (see
# /work/shared/notes/slurm-testbed.md).  Needs cmake and g++; about 8 minutes
# on 2 cores.  Usage: tools/build_horovod.sh [VENV]   (default .venv-tf215)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-tf215}"
PY="$VENV/bin/python"
if "$PY" -c "import horovod.tensorflow as hvd; import horovod.tensorflow.mpi_ops" 2>/dev/null; then
    echo "horovod already importable in $VENV"; exit 0
fi
command -v cmake >/dev/null || { echo "cmake is missing (apt-get install cmake)" >&2; exit 1; }
command -v g++ >/dev/null || { echo "g++ is missing (apt-get install g++)" >&2; exit 1; }
# --no-build-isolation: the build must see the venv's TensorFlow; give it its
# build requirements explicitly.
"$PY" -m pip install --quiet "setuptools<70" wheel packaging cloudpickle psutil pyyaml cffi
HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
MAKEFLAGS="-j$(nproc)" \
    "$PY" -m pip install --no-build-isolation --no-cache-dir horovod==0.28.1
"$PY" -c "import horovod, horovod.tensorflow as hvd; print('horovod', horovod.__version__, 'gloo', hvd.gloo_built(), 'mpi', hvd.mpi_built())"
