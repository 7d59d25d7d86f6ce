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
mkdir -p "$OUT"

if [ ! -f "$OUT/warmup/final/config.json" ]; then
  $T sft compare-cpu run.out_dir="$OUT/warmup" model.path=null learner.schedule=cosine learner.warmup_steps=10 \
    --episodes 512 --epochs 2 --batch-episodes 8 --lr 3e-3 --budgets 3,5 | tee "$OUT/warmup.log"
fi

for seed in $SEEDS; do
  for method in $METHODS; do
    run="$OUT/$method-s$seed"
    [ -f "$run/final/config.json" ] && continue
    resume=""
    [ -f "$run/checkpoints/latest" ] && resume="--resume"
    /usr/bin/time -f "%e s wall" -o "$run.time" \
      $T train compare-cpu algorithm.name="$method" run.seed="$seed" run.out_dir="$run" \
      model.path="$OUT/warmup/final" $resume 2>&1 | tee "$run.log" | grep -E "^step|resumed" || true
    [ -f "$run/final/config.json" ] || { echo "training $run did not finish: see $run.log"; exit 1; }
  done
done

policies=(--policy bo --policy random --policy "hf:$OUT/warmup/final")
for seed in $SEEDS; do
  for method in $METHODS; do policies+=(--policy "hf:$OUT/$method-s$seed/final"); done
done
IN=(--tasks ota5t_generic --tasks tia_gf180 --tasks telescopic_sky130 --tasks strongarm_sky130)
[ -f "$OUT/eval-in/results.json" ] || \
  $T eval "${policies[@]}" "${IN[@]}" --queries "$QUERIES" --budget 5 --seed 0 --max-new-tokens 192 \
    --out "$OUT/eval-in"
[ -f "$OUT/eval-out/results.json" ] || \
  $T eval "${policies[@]}" --tasks out-of-domain --queries "$QUERIES" --budget 5 --seed 0 --max-new-tokens 192 \
    --out "$OUT/eval-out"
