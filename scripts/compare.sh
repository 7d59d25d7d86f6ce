#!/usr/bin/env bash
# The comparison of docs/results.md, end to end on one CPU machine: a format warm-up, the four RL
# methods x SEEDS from it (equal simulation budget, trained at the evaluation budget T = 5), then
# the held-out evaluation of every policy, multi-turn and ST-iter, against Bayesian optimisation
# and random search on the same queries (more of them for the baselines, the shortcut ones too), the warm-up's own
# evaluation last, and the report.
# Every stage skips what is already finished, a killed warm-up or training resumes from its
# checkpoint and a killed evaluation from its episodes, so the script can be run again after a
# stop: it picks up where the files say. Each policy is evaluated as soon as it is trained (its
# own eval-in-RUN and eval-out-RUN folders, which tlgrpo report merges), and with KEEP set the
# small outputs of every finished stage are copied there at once (tlgrpo report --keep), so that
# committing KEEP after each run loses at most the run in progress with the machine.
#   bash scripts/compare.sh [OUT]      (default runs/compare)
# A grid longer than a machine's life: commit KEEP after each run; on a new machine the same command
# redoes the warm-up, checks its weights' digest against KEEP's, and skips what KEEP holds.
# Knobs (environment): SEEDS, METHODS, STEPS, CONFIG, QUERIES (language-model policies, per task),
# BASELINE_QUERIES (BO and random search), BASELINES_FROM (finished baseline evaluations), PROTOCOLS,
# TEMPERATURE and TOP_P (the policies' evaluation; default the config's sampling), TRAIN_FLAGS (config
# overrides for every training, e.g. the threads of one run on the whole machine with PARALLEL=1), WARMUP_EPISODES, PARALLEL (runs side by side),
# EVAL_WORKERS (simulation workers of each evaluation), KEEP (e.g. docs/results/compare-2),
# WARMUP_EVAL (last, the default: the warm-up's own evaluation after every run; first: before the
# runs, so that its rows, what RL is measured against, are kept before a long grid stops).
# A variant run: a METHODS entry METHOD_VARIANT (e.g. tl_grpo_own) trains METHOD with the config
# overrides in VARIANT_VARIANT, e.g. VARIANT_own="algorithm.end_reward=own"; tlgrpo report
# gives it rows of its own next to METHOD's.
# A pretrained model: WARMUP_FROM names it (an installed model or a folder; default null, the
# config's tiny model from scratch), WARMUP_FLAGS sets the warm-up's schedule, BASE evaluates the
# model itself as the base model's rows, and ENGINE=vllm evaluates every policy on the vLLM
# engine (vllm:PATH). Grid B of docs/results.md:
#   CONFIG=compare-smollm2 WARMUP_FROM=smollm2-135m BASE=smollm2-135m ENGINE=vllm PARALLEL=1 WARMUP_EPISODES=176 \
#   WARMUP_FLAGS="--epochs 1 --batch-episodes 4 --lr 5e-4 --changes 3" METHODS="tl_grpo traj_grpo" SEEDS=0 \
#   STEPS=32 WARMUP_EVAL=first KEEP=docs/results/compare-smollm2 bash scripts/compare.sh runs/compare-smollm2
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/compare}
T=.venv/bin/tlgrpo
export PYTHONUNBUFFERED=1
CONFIG=${CONFIG:-compare-cpu}
SEEDS=${SEEDS:-"0 1 2"}
METHODS=${METHODS:-"tl_grpo traj_grpo single_turn gtpo"}
STEPS=${STEPS:-40}
QUERIES=${QUERIES:-30}
BASELINE_QUERIES=${BASELINE_QUERIES:-100}
PROTOCOLS=${PROTOCOLS:-"multi-turn st-iter"}
WARMUP_EPISODES=${WARMUP_EPISODES:-352}
PARALLEL=${PARALLEL:-2}
EVAL_WORKERS=${EVAL_WORKERS:-1}
KEEP=${KEEP:-}
WARMUP_FROM=${WARMUP_FROM:-null}
WARMUP_FLAGS=${WARMUP_FLAGS:-"--epochs 12 --batch-episodes 8 --lr 3e-3"}
BASE=${BASE:-}
ENGINE=${ENGINE:-hf}
case $ENGINE in hf | vllm) ;; *) echo "ENGINE=$ENGINE: use hf or vllm" >&2; exit 2 ;; esac
# the policies are evaluated with the sampling they were trained with (the config's), unless set
read -r config_temperature config_top_p < <(.venv/bin/python -c "from system.config import load_config
s = load_config('$CONFIG').rollout.sampling; print(s.temperature, s.top_p)") || { echo "CONFIG=$CONFIG: not loaded" >&2; exit 2; }
TEMPERATURE=${TEMPERATURE:-$config_temperature}
TOP_P=${TOP_P:-$config_top_p}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
WARMUP_EVAL=${WARMUP_EVAL:-last}
case $WARMUP_EVAL in first | last) ;; *) echo "WARMUP_EVAL=$WARMUP_EVAL: use first or last" >&2; exit 2 ;; esac
method_args() {  # run name: the config overrides that make it (algorithm.name, a variant's settings)
  local base
  for base in tl_grpo traj_grpo single_turn gtpo; do
    if [ "$1" = "$base" ]; then echo "algorithm.name=$base"; return 0; fi
    if [[ $1 == "${base}_"* ]]; then
      local knob="VARIANT_${1#"${base}_"}"
      [ -n "${!knob:-}" ] || { echo "$1: set $knob to the variant's config overrides" >&2; return 1; }
      echo "algorithm.name=$base ${!knob}"; return 0
    fi
  done
  echo "$1: not a method (tl_grpo, traj_grpo, single_turn, gtpo) or METHOD_VARIANT" >&2; return 1
}
for method in $METHODS; do method_args "$method" > /dev/null || exit 2; done
mkdir -p "$OUT"
$T data build > "$OUT/data.log"  # the held-out and training query sets (a new machine has none; no simulation)

if [ ! -f "$OUT/warmup/final/config.json" ]; then
  resume=""  # a killed warm-up goes on from its episodes and its latest checkpoint
  [ -f "$OUT/warmup/sft_run.json" ] && resume="--resume"
  # shellcheck disable=SC2086  # WARMUP_FLAGS holds separate flags
  $T sft "$CONFIG" run.out_dir="$OUT/warmup" model.path="$WARMUP_FROM" learner.schedule=cosine \
    learner.warmup_steps=10 sim.max_workers=2 learner.threads_per_rank=2 learner.cpus_per_rank=2 \
    --episodes "$WARMUP_EPISODES" $WARMUP_FLAGS --budgets 5 $resume | tee -a "$OUT/warmup.log"
fi

# The warm-up's weights' digest, kept with the small outputs: a grid that outlives its machine redoes
# the warm-up (it is deterministic on the same kind of machine), and a run kept from the earlier one
# and a run trained now start from the same policy only if the digests match.
digest="$OUT/warmup/weights.sha256"
[ -f "$digest" ] || (cd "$OUT/warmup/final" && sha256sum -- *.safetensors) > "$digest"
if [ -n "$KEEP" ] && [ -f "$KEEP/warmup/weights.sha256" ] && ! cmp -s "$KEEP/warmup/weights.sha256" "$digest"; then
  echo "$OUT/warmup/final is not the warm-up that the runs kept in $KEEP started from" \
    "($digest differs from $KEEP/warmup/weights.sha256): use that KEEP's own machine, or another KEEP" >&2
  exit 1
fi

# Finished evaluations copied in instead of run again (e.g. BASELINES_FROM=docs/baselines: its
# eval-in and eval-out folders, when they evaluated the same policies on these tasks)
if [ -n "${BASELINES_FROM:-}" ]; then
  for domain in in out; do
    from="$BASELINES_FROM/eval-$domain" to="$OUT/eval-$domain-baselines"
    [ -e "$to" ] || { cp -r "$from" "$to" && gunzip "$to/episodes.jsonl.gz"; }
  done
fi

kept() {  # an evaluation folder that an earlier machine finished: its outputs are in KEEP
  [ -n "$KEEP" ] && [ -f "$KEEP/$1/results.json" ]
}
evaluate() {  # folder tasks queries policy-and-protocol flags...
  local name=$1 folder="$OUT/$1" tasks=$2 queries=$3 resume=""
  shift 3
  [ -f "$folder/results.json" ] && return 0
  [ ! -e "$folder" ] && kept "$name" && return 0  # finished on an earlier machine
  [ -f "$folder/episodes.jsonl" ] && resume="--resume"
  $T eval "$@" --tasks "$tasks" --queries "$queries" --budget 5 --seed 0 --max-new-tokens 256 \
    --temperature "$TEMPERATURE" --top-p "$TOP_P" \
    --concurrency 96 --workers "$EVAL_WORKERS" --out "$folder" $resume > "$folder.log" 2>&1 ||
    { echo "evaluation $folder did not finish: see $folder.log"; return 1; }
}
protocols=()
for protocol in $PROTOCOLS; do protocols+=(--protocol "$protocol"); done
evaluate_policy() {  # name model-folder: the held-out evaluation of one policy, both domains
  evaluate "eval-in-$1" in-domain "$QUERIES" --policy "$ENGINE:$2" "${protocols[@]}" &&
    evaluate "eval-out-$1" out-of-domain "$QUERIES" --policy "$ENGINE:$2" "${protocols[@]}"
}
keep() {  # the small outputs of every finished stage, into KEEP (a folder to commit)
  [ -n "$KEEP" ] && $T report "$OUT" --keep "$KEEP" > /dev/null
  return 0
}

train() {  # method seed: train, evaluate the final policy at once, keep its outputs
  local run="$OUT/$1-s$2" resume="" started=$SECONDS args
  args=$(method_args "$1")
  [ ! -d "$run" ] && kept "eval-out-$1-s$2" && return 0  # trained and evaluated on an earlier machine
  if [ ! -f "$run/final/config.json" ]; then
    [ -f "$run/checkpoints/latest" ] && resume="--resume"
    # shellcheck disable=SC2086  # args holds separate overrides
    $T train "$CONFIG" $args run.seed="$2" run.out_dir="$run" run.steps="$STEPS" \
      model.path="$OUT/warmup/final" $TRAIN_FLAGS $resume >> "$run.log" 2>&1 || true
    echo "$((SECONDS - started)) s wall" >> "$run.time"
    [ -f "$run/final/config.json" ] || { echo "training $run did not finish: see $run.log"; return 1; }
    grep -E "^step" "$run.log" | tail -1
  fi
  evaluate_policy "$1-s$2" "$run/final" && keep
}

# the search baselines and the shortcuts that must not win (SPEC section 2; lookup runs in domain only)
SHORTCUTS=(--policy centre --policy reference --policy constant --policy lookup)
evaluate eval-in-baselines in-domain "$BASELINE_QUERIES" --policy bo --policy random "${SHORTCUTS[@]}"
evaluate eval-out-baselines out-of-domain "$BASELINE_QUERIES" --policy bo --policy random "${SHORTCUTS[@]}"
[ -z "$BASE" ] || evaluate_policy base "$BASE"
if [ "$WARMUP_EVAL" = first ]; then evaluate_policy warmup "$OUT/warmup/final" || true; fi
keep

runs=()
for seed in $SEEDS; do for method in $METHODS; do runs+=("$method $seed"); done; done
for ((i = 0; i < ${#runs[@]}; i += PARALLEL)); do  # PARALLEL runs side by side (one core each)
  pids=()
  for run in "${runs[@]:i:PARALLEL}"; do train $run & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
done
# the warm-up's rows last by default: a reference for what RL added, where the runs are what the
# grid is for (WARMUP_EVAL=first: before them; a finished evaluation is skipped here)
evaluate_policy warmup "$OUT/warmup/final" && keep
$T report "${KEEP:-$OUT}"  # KEEP holds the runs of earlier machines too
