#!/usr/bin/env bash
# Submit a training run to a Ray cluster:
#   RAY_ADDRESS=http://HEAD:8265 deploy/submit.sh CONFIG [key=value ...] [--resume]
# The repository is uploaded as the job's working directory (deploy/runtime_env.yaml says what is
# left out); the cluster's image must hold the Python packages (scripts/setup.sh, or the image
# named in deploy/rayjob.yaml). RAY_AUTH_MODE must match the cluster's (token auth is on by
# default since Ray 2.60: export RAY_AUTH_TOKEN, or run every node with RAY_AUTH_MODE=disabled).
# SUBMIT_ID names the job; SUBMIT_NO_WAIT=1 returns once the job is accepted instead of tailing
# its logs (then: ray job status ID, ray job logs --follow ID).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RAY_ADDRESS:=http://127.0.0.1:8265}"
export RAY_USAGE_STATS_ENABLED=0
RAY=${RAY:-ray}
exec "$RAY" job submit --address "$RAY_ADDRESS" --working-dir . \
  --runtime-env deploy/runtime_env.yaml ${SUBMIT_ID:+--submission-id "$SUBMIT_ID"} \
  ${SUBMIT_NO_WAIT:+--no-wait} \
  -- python -m system.cli train "$@"
