#!/usr/bin/env bash
# Runs the whole test suite (real ngspice, real Ray) in the set-up environment, then the vLLM
# engine's tests in .venv-vllm.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 WANDB_MODE=offline
if [ $# -gt 0 ]; then exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"; fi
# the vLLM engine's tests run in the vLLM environment (set up by scripts/setup.sh)
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 --ignore=tests/test_vllm_engine.py
if [ "${TLGRPO_SKIP_VLLM:-0}" != 1 ]; then
    echo "== vLLM engine tests (.venv-vllm)"
    PYTHONPATH=. VLLM_ENABLE_V1_MULTIPROCESSING=0 .venv-vllm/bin/python -m pytest -q -p no:cacheprovider tests/test_vllm_engine.py
fi
