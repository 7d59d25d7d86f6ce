"""`tlgrpo report`: method names from evaluation rows, seeds pooled, tables and figures written."""

import gzip
import json

import pytest

from system.evaluation.figures import seed_mean, trailing_mean
from system.evaluation.methods import base_method, in_row_order, label_of, method_of
from system.evaluation.paired import bootstrap_interval, episode_scores
from system.evaluation.report import eval_table, load_runs, training_table, trend_table, write_report
from system.evaluation.turn_tables import action_table, move_table


def test_method_of_reads_runs_warmup_and_baselines():
    assert method_of("hf:runs/compare/tl_grpo-s1/final (multi-turn)") == ("tl_grpo", 1)
    assert method_of("hf:runs/compare/single_turn-s0/final (multi-turn)") == ("single_turn", 0)
    assert method_of("hf:runs/compare/warmup/final (multi-turn)") == ("warm-up", None)
    assert method_of("bo (n/a)") == ("bo", None)
    assert method_of("hf:runs/compare/gtpo-s2/final (st-iter)") == ("gtpo", 2)
    assert label_of("hf:runs/compare/gtpo-s2/final (st-iter)") == "gtpo (st-iter)"
    assert label_of("hf:runs/compare/gtpo-s2/final", "multi-turn") == "gtpo"


def test_vllm_rows_read_as_hf_ones_and_an_installed_model_is_the_base_model():
    from system.evaluation.methods import in_row_order

    assert method_of("vllm:runs/c/traj_grpo-s0/final (multi-turn)") == ("traj_grpo", 0)
    assert method_of("vllm:runs/c/warmup/final (st-iter)") == ("warm-up", None)
    assert method_of("vllm:smollm2-135m (multi-turn)") == ("base model", None)
    assert method_of("hf:smollm2-135m (st-iter)") == ("base model", None)
    assert method_of("openai:gpt (multi-turn)") == ("openai:gpt", None)
    labels = ["tl_grpo", "warm-up", "base model (st-iter)", "bo", "base model"]
    assert in_row_order(labels) == ["bo", "base model", "base model (st-iter)", "warm-up", "tl_grpo"]


def test_bootstrap_interval_has_the_width_of_the_query_sample():
    """Resampling queries within each task: no spread, no width; a fair coin over 100 queries is
    0.5 with a 95 % interval of about +-1.96 * 0.05; a query's seeds are averaged first."""
    flat = {"a": {q: [0.3] for q in range(40)}, "b": {q: [0.5] for q in range(10)}}
    assert bootstrap_interval(flat) == (pytest.approx(0.4), pytest.approx(0.4))
    coin = {"a": {q: [float(q % 2)] for q in range(100)}}
    lo, hi = bootstrap_interval(coin)
    assert lo == pytest.approx(0.5 - 0.098, abs=0.02) and hi == pytest.approx(0.5 + 0.098, abs=0.02)
    seeds_agree_on_the_mean = {"a": {q: [0.0, 1.0] for q in range(30)}}  # every query averages 0.5
    assert bootstrap_interval(seeds_agree_on_the_mean) == (pytest.approx(0.5), pytest.approx(0.5))


def test_episode_scores_pool_seeds_by_query_and_split_protocols():
    episodes = [
        {"policy": "hf:r/tl_grpo-s0/final", "protocol": "multi-turn", "task": "a", "seed": 7, "best_score": 0.2},
        {"policy": "hf:r/tl_grpo-s1/final", "protocol": "multi-turn", "task": "a", "seed": 7, "best_score": 0.4},
        {"policy": "hf:r/tl_grpo-s1/final", "protocol": "st-iter", "task": "a", "seed": 7, "best_score": 0.9},
        {"policy": "bo", "protocol": "n/a", "task": "z", "seed": 7, "best_score": 0.9},  # not a table task
    ]
    scores = episode_scores(episodes, ["a"])
    assert scores["tl_grpo"]["a"] == {7: [0.2, 0.4]} and scores["tl_grpo (st-iter)"]["a"] == {7: [0.9]}
    assert "bo" not in scores


def _results(rows):
    return {
        "settings": {"queries": 2, "budget": 5, "wall_s": 1.0},
        "tasks": ["a", "b"],
        "initial": {"a": 0.1, "b": 0.0},
        "rows": rows,
    }


def _row(name, a, b, curve):
    return {
        "method": name,
        "per_task": {"a": a, "b": b},
        "averages": {"in-domain": (a + b) / 2},
        "format_error_rate": 0.25 if name.startswith("hf:") else None,
        "history_best": curve,
    }


def test_seeds_are_pooled_into_mean_and_spread():
    results = _results(
        [
            _row("random (n/a)", 0.2, 0.4, [0, 0.3]),
            _row("hf:r/tl_grpo-s0/final (multi-turn)", 0.5, 0.1, [0, 0.2]),
            _row("hf:r/tl_grpo-s1/final (multi-turn)", 0.3, 0.3, [0, 0.4]),
        ]
    )
    table, averages = eval_table(results, "in-domain")
    assert averages["tl_grpo"] == [pytest.approx(0.3), pytest.approx(0.3)]
    line = next(x for x in table.splitlines() if x.startswith("| tl_grpo"))
    assert "(2 seeds)" in line and "0.400 ± 0.100" in line and "0.25" in line
    assert table.index("| random") < table.index("| tl_grpo")  # baselines first
    episodes = [
        {"policy": p, "protocol": "multi-turn", "task": t, "seed": q, "best_score": 0.1 * q}
        for p in ("hf:r/tl_grpo-s0/final", "hf:r/tl_grpo-s1/final")
        for t in ("a", "b")
        for q in range(3)
    ]
    with_intervals, _ = eval_table(results, "in-domain", episodes)
    line = next(x for x in with_intervals.splitlines() if x.startswith("| tl_grpo"))
    lo, hi = bootstrap_interval({t: {q: [0.1 * q] * 2 for q in range(3)} for t in ("a", "b")})
    assert 0.0 < lo < 0.1 < hi < 0.2 and f"| {lo:.3f}-{hi:.3f} | 3 |" in line  # queries 0, 0.1, 0.2 per task
    assert "| - | - |" in next(x for x in with_intervals.splitlines() if x.startswith("| random"))
    # the initial design's row: over the queries every row ran, not one row's (random ran 0-9, the policies 0-2)
    ran = [dict(e, initial_score=0.1 * e["seed"]) for e in episodes]
    ran += [
        {"policy": "random", "task": t, "seed": q, "best_score": 0.5, "initial_score": 0.1 * q}
        for t in "ab"
        for q in range(10)
    ]
    table, _ = eval_table(results, "in-domain", ran)
    assert table.splitlines()[2].startswith("| initial design (turn 0) | 0.100 | 0.100 |")  # queries 0-2: 0.1, not 0.45


def test_write_report_makes_tables_and_figures(tmp_path):
    for method, seed in (("tl_grpo", 0), ("gtpo", 0)):
        run = tmp_path / f"{method}-s{seed}"
        run.mkdir()
        lines = [
            {"step": k, "reward/mean": -0.4 + 0.1 * k, "entropy": 0.8, "response_length/mean": 130, "loss": 0.1}
            | ({"time/step_s": 10.0} if method == "tl_grpo" else {})
            for k in range(5)
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (tmp_path / f"{method}-s{seed}.time").write_text("100 s wall\n20 s wall\n")
    (tmp_path / "eval-in").mkdir()
    rows = [_row("bo (n/a)", 0.1, 0.1, [0, 0.1]), _row("hf:x/gtpo-s0/final (multi-turn)", 0.2, 0.2, [0, 0.2])]
    (tmp_path / "eval-in" / "results.json").write_text(json.dumps(_results(rows)))
    episode = {"policy": "bo", "turns": [{"action": "initial"}, {"action": "call", "result": {"status": "ok"}}]}
    (tmp_path / "eval-in" / "episodes.jsonl").write_text(json.dumps(episode) + "\n")
    baselines = _results([_row("random (n/a)", 0.3, 0.3, [0, 0.3])])
    baselines["settings"]["queries"] = 100  # BO and random search on more of the same queries
    (tmp_path / "eval-in-baselines").mkdir()
    (tmp_path / "eval-in-baselines" / "results.json").write_text(json.dumps(baselines))
    report = write_report(tmp_path).read_text()
    assert "## in-domain (2-100 held-out queries per task, budget 5, 2 s)" in report
    assert "| gtpo |" in report and "| random |" in report
    assert "What the turns did (in-domain)" in report and "| bo | 1 | 1.00 |" in report
    assert "| tl_grpo s0 | 5 | 5 |" in report and "| 50 s | 120 s |" in report  # both attempts of a resumed run
    assert "| - | 120 s |" in report  # gtpo's metrics carry no step times
    assert (tmp_path / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "turn_curves.png").stat().st_size > 1000


def _turn(action, status=None, format_ok=True):
    return {"action": action, "result": {"status": status} if status else None, "format_ok": format_ok}


def test_action_table_counts_what_each_methods_turns_did():
    initial = _turn("initial", "ok")
    episodes = [
        {"policy": "random", "turns": [initial, _turn("call", "ok"), _turn("call", "timeout")]},
        {"policy": "hf:r/tl_grpo-s0/final", "turns": [initial, _turn("call", "invalid"), _turn("end")]},
        {"policy": "hf:r/tl_grpo-s1/final", "turns": [initial, _turn("none", format_ok=False), _turn("call", "ok")]},
    ]
    table = action_table(episodes).splitlines()
    assert table[2] == "| random | 2 | 0.50 | 0.50 | 0.00 | 0.00 | 0.00 | 0.00 |"  # the initial design not counted
    assert table[3] == "| tl_grpo | 4 | 0.25 | 0.00 | 0.25 | 0.25 | 0.25 | 0.25 |"  # seeds pooled


def test_move_table_measures_each_design_against_the_one_before_and_the_initial_score():
    def call(design, score, status="ok"):
        return {"action": "call", "design": design, "result": {"status": status}, "score": score}

    initial = {"action": "initial", "design": {"w": 1e-6, "l": 1e-6}, "score": 0.2}
    episodes = [
        {  # one parameter ten-fold (as the reply wrote it), then a refused design, then a failure
            "policy": "hf:r/tl_grpo-s0/final",
            "protocol": "multi-turn",
            "turns": [
                initial,
                call({"w": "10u", "l": 1e-6}, 0.4),
                call({"w": "1", "l": 1e-6}, 0.0, "invalid"),  # refused: not a move, not the design before
                call({"w": 10e-6, "l": 1e-7}, 0.0, "failed"),  # from the 10u design: l a decade down
            ],
        },
        {"policy": "random", "turns": [initial, call({"w": 1e-4, "l": 1e-5}, 0.8)]},
    ]
    table = move_table(episodes).splitlines()
    assert table[2] == "| random | 1 | 2.0 | 1.50 | +0.600 | 0.000 | 1.00 |"
    assert table[3] == "| tl_grpo | 2 | 1.0 | 1.00 | +0.000 | 0.200 | 0.50 |"
    assert move_table([{"policy": "random", "turns": [initial, {"action": "end"}]}]) == ""


def test_keep_copies_what_the_report_needs_and_no_model(tmp_path):
    """A comparison folder kept for committing: the finished run's metrics and wall time, every
    finished evaluation with its episodes gzipped; no checkpoint, no model, no unfinished stage.
    The report built from the kept copy merges each run's own eval-in-RUN folder."""
    from system.evaluation.keep import keep_small_outputs

    root, kept = tmp_path / "runs", tmp_path / "kept"
    run = root / "tl_grpo-s0"
    (run / "final").mkdir(parents=True)
    (run / "final" / "config.json").write_text("{}")
    (run / "final" / "model.safetensors").write_bytes(b"weights")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "latest").write_text("step-4")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 0, "reward/mean": 0.1, "loss": 0.2}) + "\n")
    (root / "tl_grpo-s0.time").write_text("300 s wall\n")
    for step, value in ((0, 0.2), (5, 0.4)):  # its held-out curve
        held = run / "eval" / f"step_{step:06d}"
        held.mkdir(parents=True)
        (held / "results.json").write_text(json.dumps(_heldout(step, value)))
        (held / "results.md").write_text("table")
        (held / "episodes.jsonl").write_text("{}\n")
    (root / "warmup" / "final").mkdir(parents=True)
    (root / "warmup" / "final" / "model.safetensors").write_bytes(b"weights")
    (root / "warmup" / "weights.sha256").write_text("ab12  model.safetensors\n")
    unfinished = root / "gtpo-s0"
    unfinished.mkdir()
    (unfinished / "metrics.jsonl").write_text(json.dumps({"step": 0}) + "\n")
    for folder, rows in (
        ("eval-in-baselines", [_row("random (n/a)", 0.3, 0.3, [0, 0.3])]),
        ("eval-in-tl_grpo-s0", [_row("hf:runs/tl_grpo-s0/final (multi-turn)", 0.5, 0.5, [0, 0.5])]),
    ):
        (root / folder).mkdir()
        (root / folder / "results.json").write_text(json.dumps(_results(rows)))
        episode = {"policy": rows[0]["method"].split(" (")[0], "turns": [{"action": "initial"}]}
        (root / folder / "episodes.jsonl").write_text(json.dumps(episode) + "\n")
    copied_back = root / "eval-in-bo"  # a kept folder copied in: its episodes gzipped already
    copied_back.mkdir()
    (copied_back / "results.json").write_text(json.dumps(_results([_row("bo (n/a)", 0.2, 0.2, [0, 0.2])])))
    bo_episode = {"policy": "bo", "turns": [{"action": "initial"}]}
    (copied_back / "episodes.jsonl.gz").write_bytes(gzip.compress(json.dumps(bo_episode).encode() + b"\n"))
    (root / "eval-in-gtpo-s0").mkdir()  # still running: episodes, no results
    (root / "eval-in-gtpo-s0" / "episodes.jsonl").write_text("{}\n")

    written = {p.relative_to(kept).as_posix() for p in keep_small_outputs(root, kept)}
    assert written == {
        "tl_grpo-s0/metrics.jsonl",
        "tl_grpo-s0.time",
        "tl_grpo-s0/eval/step_000000/results.json",
        "tl_grpo-s0/eval/step_000000/results.md",
        "tl_grpo-s0/eval/step_000005/results.json",
        "tl_grpo-s0/eval/step_000005/results.md",
        "warmup/weights.sha256",
        "eval-in-baselines/results.json",
        "eval-in-baselines/episodes.jsonl.gz",
        "eval-in-tl_grpo-s0/results.json",
        "eval-in-tl_grpo-s0/episodes.jsonl.gz",
        "eval-in-bo/results.json",
        "eval-in-bo/episodes.jsonl.gz",
    }
    assert (kept / "eval-in-bo" / "episodes.jsonl.gz").read_bytes() == (copied_back / "episodes.jsonl.gz").read_bytes()
    report = write_report(kept).read_text()
    assert "| tl_grpo |" in report and "| random |" in report  # both folders merged
    assert "| tl_grpo s0 | 1 | 1 |" in report and "300 s" in report
    assert "| tl_grpo | 1 | 0.200 | 0.400 | - |" in report  # the held-out curve, from the kept copy


def _heldout(step: int, value: float, method: str = "tl_grpo") -> dict:
    """A training run's held-out evaluation at `step`, as the trainer writes it."""
    row = {"method": f"{method}@{step} (multi-turn)", "per_task": {"a": value}, "averages": {"all": value}}
    return {"tasks": ["a"], "rows": [row], "settings": {"queries": 2, "budget": 5, "step": step}}


def test_the_held_out_curve_says_where_a_method_flattened(tmp_path):
    from system.evaluation.heldout import curve_table, flattened_at, load_curves, run_curve

    assert flattened_at([(0, 0.1), (5, 0.5), (10, 0.51), (15, 0.49)]) == 5  # +0.01 after step 5: flat
    assert flattened_at([(0, 0.1), (5, 0.5), (10, 0.6)]) is None  # still rising at its last evaluation
    assert flattened_at([(0, 0.5), (5, 0.3), (10, 0.2)]) == 0  # never above its start: flat (falling) from 0
    for seed, values in ((0, (0.1, 0.4, 0.5, 0.5)), (1, (0.3, 0.4, 0.5))):  # seed 1 stopped earlier
        for step, value in zip((0, 5, 10, 15), values):
            held = tmp_path / f"tl_grpo-s{seed}" / "eval" / f"step_{step:06d}"
            held.mkdir(parents=True)
            (held / "results.json").write_text(json.dumps(_heldout(step, value)))
    assert run_curve(tmp_path / "tl_grpo-s1") == [(0, 0.3), (5, 0.4), (10, 0.5)]
    curves = load_curves(tmp_path, {"tl_grpo": {0: [], 1: []}, "gtpo": {0: []}})  # gtpo: no evaluations
    assert set(curves) == {"tl_grpo"}
    table = curve_table(curves)
    # the seeds' mean at the steps both reached, still rising at the last of them: not flat yet
    assert "| tl_grpo | 2 | 0.200 | 0.400 | 0.500 | - |" in table
    bad = tmp_path / "gtpo-s0" / "eval" / "step_000000"
    bad.mkdir(parents=True)
    (bad / "results.json").write_text(json.dumps({"tasks": ["a"], "rows": [], "settings": {"step": 0}}))
    with pytest.raises(ValueError, match=r"gtpo-s0/eval/step_000000/results.json: no row of the training policy"):
        run_curve(tmp_path / "gtpo-s0")


def test_paired_difference_cancels_query_difficulty_and_uses_common_queries():
    """A method 0.1 above the baseline on every query is a sure win however hard the queries are;
    only the queries both ran count; a method that matches on average is a tie."""
    from system.evaluation.paired import difference_table, paired_difference

    hard_and_easy = {"a": {q: [q / 40] for q in range(40)}}  # baseline, spread over 0-1
    better = {"a": {q: [q / 40 + 0.1, q / 40 + 0.1] for q in range(30)}}  # two seeds, 30 of the queries
    mean, lo, hi, common = paired_difference(better, hard_and_easy)
    assert common == 30 and mean == pytest.approx(0.1) and (lo, hi) == (pytest.approx(0.1), pytest.approx(0.1))
    alternating = {"a": {q: [q / 40 + (0.2 if q % 2 else -0.2)] for q in range(40)}}
    mean, lo, hi, _ = paired_difference(alternating, hard_and_easy)
    assert mean == pytest.approx(0.0) and lo < 0 < hi
    assert paired_difference(better, {"b": {0: [0.0]}}) is None

    def episode(policy, seed, score, protocol="n/a"):
        return {"policy": policy, "protocol": protocol, "task": "a", "seed": seed, "best_score": score}

    episodes = [episode("random", q, 0.5) for q in range(40)]
    episodes += [episode("hf:r/tl_grpo-s0/final", q, 0.7, "multi-turn") for q in range(30)]
    table = difference_table(episodes, ["a"])
    assert "| tl_grpo | +0.200 (+0.200 to +0.200) | 30 |" in table


def test_language_model_rows_are_paired_within_their_protocol_and_listed_run_by_run():
    """Against the warm-up and TL-GRPO, an ST-iter row is paired with their ST-iter rows; a method
    is not paired with itself; each run keeps its own row, with the episodes that simulated nothing
    and those that ended at their first turn."""
    from system.evaluation.paired import difference_table
    from system.evaluation.report import run_table

    def episode(policy, protocol, seed, score, second):
        turns = [{"action": "call", "result": {"status": "ok"}}, second]
        return {"policy": policy, "protocol": protocol, "task": "a", "seed": seed, "best_score": score, "turns": turns}

    ok = {"action": "call", "result": {"status": "ok"}}
    end = {"action": "end"}
    episodes = []
    for q in range(10):
        episodes += [
            episode("hf:r/warmup/final", "multi-turn", q, 0.2, ok),
            episode("hf:r/warmup/final", "st-iter", q, 0.5, ok),
        ]
        episodes += [episode("hf:r/tl_grpo-s0/final", "multi-turn", q, 0.4, ok)]
        episodes += [episode("hf:r/tl_grpo-s1/final", "multi-turn", q, 0.0 if q < 5 else 0.4, end if q < 5 else ok)]
        episodes += [episode("hf:r/tl_grpo-s0/final", "st-iter", q, 0.6, ok)]
    table = difference_table(episodes, ["a"], against=("warm-up", "tl_grpo"))
    assert "| tl_grpo | +0.100 (" in table  # a query's seeds averaged: (0.4 + 0.0 or 0.4) / 2 - 0.2
    assert "| tl_grpo (st-iter) | +0.100 (+0.100 to +0.100) | - | 10 |" in table  # 0.6 - 0.5, not 0.6 - 0.2
    assert "| warm-up | - | -0.100 (" in table and "| warm-up (st-iter) | - | -0.100 (-0.100 to -0.100) |" in table
    assert difference_table(episodes, ["a"], against=("bo",)) == ""
    warm_up_only = [e for e in episodes if "warmup" in e["policy"]]
    assert difference_table(warm_up_only, ["a"], against=("warm-up",)) == ""  # only itself to pair with

    runs = run_table(episodes, ["a"])
    assert "| tl_grpo s0 | multi-turn | 0.400 | 0.00 | 0.00 |" in runs
    assert "| tl_grpo s1 | multi-turn | 0.200 | 0.50 | 0.50 |" in runs
    assert runs.index("| warm-up | multi-turn") < runs.index("| tl_grpo s0 | multi-turn") < runs.index("| tl_grpo s1")


def test_write_report_adds_the_pairs_between_policies_and_the_runs_apart(tmp_path):
    def episode(policy, score):
        turns = [{"action": "initial"}, {"action": "call", "result": {"status": "ok"}}]
        return {"policy": policy, "protocol": "multi-turn", "task": "a", "seed": 0, "best_score": score, "turns": turns}

    names = ("hf:r/warmup/final", "hf:r/tl_grpo-s0/final", "hf:r/gtpo-s0/final", "hf:r/traj_grpo-s0/final")
    (tmp_path / "eval-in").mkdir()
    rows = [_row(f"{name} (multi-turn)", 0.1 * k, 0.0, [0, 0.1]) for k, name in enumerate(names)]
    (tmp_path / "eval-in" / "results.json").write_text(json.dumps(_results(rows)))
    lines = [json.dumps(episode(name, 0.1 * k)) for k, name in enumerate(names)]
    (tmp_path / "eval-in" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    report = write_report(tmp_path).read_text()
    assert "Paired differences between the language-model policies (in-domain)" in report
    head = "| minus warm-up (95 % interval) | minus tl_grpo (95 % interval) | minus traj_grpo (95 % interval) |"
    assert head in report
    assert "| gtpo | +0.200 (+0.200 to +0.200) | +0.100 (+0.100 to +0.100) | -0.100 (-0.100 to -0.100) | 1 |" in report
    assert "Each run on its own (in-domain)" in report and "| tl_grpo s0 | multi-turn | 0.100 | 0.00 | 0.00 |" in report


def test_a_variant_run_gets_its_own_rows_next_to_its_method(tmp_path):
    """A run named METHOD_VARIANT (TL-GRPO trained with another setting) is its own method in
    every table, placed after its method's rows; a run of no known method is no training run."""
    assert method_of("hf:r/tl_grpo_own-s1/final (st-iter)") == ("tl_grpo_own", 1)
    assert base_method("tl_grpo_own") == "tl_grpo" and base_method("single_turn") == "single_turn"
    assert base_method("tl_grpox") is None and base_method("warm-up") is None
    labels = ["gtpo", "tl_grpo_own (st-iter)", "traj_grpo", "tl_grpo_own", "tl_grpo", "random", "other"]
    assert in_row_order(labels) == [
        "random",
        "tl_grpo",
        "tl_grpo_own",
        "tl_grpo_own (st-iter)",
        "traj_grpo",
        "gtpo",
        "other",
    ]
    for name in ("tl_grpo_own-s1", "tl_grpo-s0", "sweep-s0"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps({"step": 0, "reward/mean": 0.1, "loss": 0.2}) + "\n")
    assert list(load_runs(tmp_path)) == ["tl_grpo", "tl_grpo_own"]
    table = training_table(load_runs(tmp_path), tmp_path)
    assert table.index("| tl_grpo s0 |") < table.index("| tl_grpo_own s1 | 1 | 1 |") and "sweep" not in table


def test_a_methods_training_curve_is_the_seeds_mean_smoothed_over_steps():
    assert trailing_mean([0.0, 4.0, 2.0, 6.0, 8.0], width=2) == [0.0, 2.0, 3.0, 4.0, 7.0]
    assert trailing_mean([1.0, 3.0], width=4) == [1.0, 2.0]  # fewer points at the start
    seeds = {
        0: [{"step": 0, "reward/mean": 0.1}, {"step": 1, "reward/mean": 0.3}, {"step": 2, "reward/mean": 0.5}],
        1: [{"step": 0, "reward/mean": 0.3}, {"step": 1}, {"step": 2, "reward/mean": 0.1}],  # step 1 not logged
    }
    steps, values = seed_mean(seeds, "reward/mean")
    assert steps == [0, 2] and values == [pytest.approx(0.2), pytest.approx(0.3)]


def test_the_trend_table_says_whether_a_curve_still_moves():
    def run(values):
        return [{"step": k, "reward/mean": v} for k, v in enumerate(values)]

    runs = {"tl_grpo": {0: run([0.0, 0.0, 0.3, 0.3, 0.3, 0.3])}, "gtpo": {0: run([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])}}
    table = trend_table(runs)
    assert "| tl_grpo | 1 | 0.000 | 0.300 | 0.300 | +0.000 |" in table  # flat over its last two thirds
    assert "| gtpo | 1 | 0.050 | 0.250 | 0.450 | +0.200 |" in table  # still rising
    assert trend_table({"tl_grpo": {0: run([0.1])}}) == ""
