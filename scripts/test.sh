#!/usr/bin/env bash
# Runs the whole test suite (real ngspice, real Ray) in the set-up environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 WANDB_MODE=offline
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
