#!/usr/bin/env bash
# The comparison of docs/results.md, end to end on one CPU machine: the format warm-up, four RL
# methods x two seeds from it (equal simulation budget), then one evaluation of every policy
# against Bayesian optimisation, random search and the warm-up on the same held-out queries.
# Each stage skips what is already finished, and a killed training resumes from its checkpoint.
#   bash scripts/compare.sh [OUT]      (default runs/compare)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/compare}
T=.venv/bin/tlgrpo
export PYTHONUNBUFFERED=1
SEEDS=${SEEDS:-"0 1"}
METHODS=${METHODS:-"tl_grpo traj_grpo single_turn gtpo"}
QUERIES=${QUERIES:-10}
OOD_QUERIES=${OOD_QUERIES:-4}  # the out-of-domain evaluation, kept smaller for time
mkdir -p "$OUT"

if [ ! -f "$OUT/warmup/final/config.json" ]; then
  $T sft compare-cpu run.out_dir="$OUT/warmup" model.path=null learner.schedule=cosine learner.warmup_steps=10 \
    sim.max_workers=2 learner.threads_per_rank=2 learner.cpus_per_rank=2 \
    --episodes 256 --epochs 12 --batch-episodes 8 --lr 3e-3 --budgets 3,5 | tee "$OUT/warmup.log"
fi

train() {  # method seed
  local run="$OUT/$1-s$2" resume="" started=$SECONDS
  [ -f "$run/final/config.json" ] && return 0
  [ -f "$run/checkpoints/latest" ] && resume="--resume"
  $T train compare-cpu algorithm.name="$1" run.seed="$2" run.out_dir="$run" \
    model.path="$OUT/warmup/final" $resume >> "$run.log" 2>&1 || true
  echo "$((SECONDS - started)) s wall" >> "$run.time"
  [ -f "$run/final/config.json" ] || { echo "training $run did not finish: see $run.log"; return 1; }
  grep -E "^step" "$run.log" | tail -1
}

for method in $METHODS; do  # the seeds of one method side by side (one core each)
  pids=()
  for seed in $SEEDS; do train "$method" "$seed" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
done

policies=(--policy bo --policy random --policy "hf:$OUT/warmup/final")
for seed in $SEEDS; do
  for method in $METHODS; do policies+=(--policy "hf:$OUT/$method-s$seed/final"); done
done
IN=(--tasks ota5t_generic --tasks tia_gf180 --tasks telescopic_sky130 --tasks strongarm_sky130)
[ -f "$OUT/eval-in/results.json" ] || \
  $T eval "${policies[@]}" "${IN[@]}" --queries "$QUERIES" --budget 5 --seed 0 --max-new-tokens 256 \
    --concurrency 96 --workers 2 --out "$OUT/eval-in"
[ -f "$OUT/eval-out/results.json" ] || \
  $T eval "${policies[@]}" --tasks out-of-domain --queries "$OOD_QUERIES" --budget 5 --seed 0 --max-new-tokens 256 \
    --concurrency 96 --workers 2 --out "$OUT/eval-out"
$T report "$OUT"
