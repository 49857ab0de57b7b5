#!/usr/bin/env bash
# The torch methods (two-tower, rating-mf, ELSA) and Cleora's torch path at the
# ML-25M shape on a GPU: the same table as benchmarks/scale.py, device "cuda". Under 10
# minutes on one GPU (each method is stopped after --limit seconds). Run it from the
# repository root whenever a GPU is at hand; record the table in docs/benchmarks.md.
#
#   bash benchmarks/gpu.sh            # PYTHON=... to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch with CUDA: use the one installed if it sees the GPU, else install the CUDA build
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null
then
    echo "installing torch 2.13.0 with CUDA ..."
    "$PY" -m pip install -q "torch==2.13.0"
fi
"$PY" -c "import embedlens" 2>/dev/null || "$PY" -m pip install -q -e .
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

PYTHONPATH=src:benchmarks "$PY" benchmarks/scale.py --shapes ml-25m \
    --methods pop,cleora,two-tower,rating-mf,elsa --device cuda --limit 80
