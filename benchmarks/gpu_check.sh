#!/usr/bin/env bash
# GPU checks in one short run (well under 5 minutes on an H100/H200): the GPU-marked tests of the
# host-free cores, then each benchmark on the CUDA device. Figures go to stdout and, when $OUT is
# set (the device machine), to $OUT/gpu_check.log.
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/gpu_check.log
status=0
{
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), torch.__version__)" || exit 1
  timeout 120 "$PY" -m pytest -q -m gpu tests/npnet tests/dpsl || status=1
  timeout 60 "$PY" benchmarks/npnet_forward.py --device cuda || status=1
  timeout 60 "$PY" benchmarks/npnet_load.py --device cuda || status=1
  timeout 60 "$PY" benchmarks/dpsl_throughput.py --device cuda || status=1
  timeout 60 "$PY" benchmarks/golden_noise_overhead.py --device cuda || status=1
  timeout 90 "$PY" benchmarks/npnet_train.py --device cuda --steps 10 --batch 16 --skip-ddp || status=1
  # training throughput of the paper's and the latent architecture at 4x8x8, 4x64x64 and 4x128x128
  timeout 90 "$PY" benchmarks/npnet_learning.py --device cuda --throughput-only || status=1
  # collection throughput (pairs/s at batch 1, 4, 8, 16) at SDXL size with random-weight ComfyUI models;
  # needs ComfyUI's own requirements importable (make setup's .venv and .comfyui)
  timeout 180 "$PY" benchmarks/collection_throughput.py --world sdxl --device cuda --samples 16 || status=1
  # reward training at SDXL size (random weights, 1024x1024, 2 euler steps): seconds per step, peak memory
  timeout 240 "$PY" benchmarks/reward_training_cost.py --device cuda || status=1
} 2>&1 | tee "$LOG"
exit $((status | PIPESTATUS[0]))
