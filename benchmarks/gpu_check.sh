#!/usr/bin/env bash
# GPU check: the CIFAR ResNet-18's SimCLR epoch (phase a1) on a CUDA GPU through
# the package's skorch net and through a hand-written loop, in fp32, bf16 and fp16, as
# images/s and ratios measured side by side in one run.  Under 5 minutes on a recent GPU.
# Prints the GPU's name; writes benchmarks/results/speed_gpu.csv (or to $1).
#   bash benchmarks/gpu_check.sh [output folder]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/results}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
    python3 benchmarks/bench_speed.py --sections gpu --out "$out"
