#!/usr/bin/env bash
# The GPU check in one command, for a GPU machine with a CUDA build of torch already installed (under 10 minutes):
# install dreamlab without touching that torch, run the CPU-vs-GPU tests and the benchmark, write the result.
#   bash experiments/gpu_check.sh [RESULTS_DIR]      # default: results (the committed folder)
set -euo pipefail
cd "$(dirname "$0")/.."
results_dir="${1:-results}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "error: torch sees no CUDA device here; install a CUDA build of torch first (see README)" >&2; exit 2; }
# --no-deps keeps the CUDA torch; the remaining dependencies are small and CPU-only.
pip install --no-deps -e . >/dev/null
pip install -e '.[dev]' --constraint <(python -c "import torch; print(f'torch=={torch.__version__}')") >/dev/null \
  || echo "warning: could not install the test dependencies; tests needing them will fail and be counted" >&2
python experiments/gpu_check.py --preset fast --device cuda --results_dir "$results_dir"
