"""`tlgrpo learn-test`: the learning tests (system/rl/learning.py): list them, run one, print its
held-out curve, save it as a PNG in the run folder, exit 1 when it fails."""

from __future__ import annotations

import json
from pathlib import Path

from system.cli.common import CliError


def cmd_learn_test(args) -> int:
    from system.config import ConfigError
    from system.rl.learning import learning_tests, load_learning_test, run_learning_test

    if args.plot:
        return plot_runs_command(args)
    tests = learning_tests()
    if args.list or not args.name:
        for name in tests:
            _, rule = load_learning_test(name)
            budget = f"{rule.max_steps} steps / {rule.max_seconds:.0f} s"
            goal = f">= {rule.threshold:g} within" if rule.threshold is not None else "reported over"
            print(f"{name:15s} {rule.metric} {goal} {budget}  {rule.description}")
        return 0
    if args.vary:
        return study(args)
    try:
        result = run_learning_test(args.name, args.out, args.overrides)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out) if args.out else None
    if out is None:
        cfg, _ = load_learning_test(args.name, args.overrides)
        out = Path(cfg.run.out_dir)
    plot_curve(result.to_json(), out / "learning_curve.png")
    (out / "learning_test.json").write_text(json.dumps(result.to_json(), indent=2))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{'step':>5s} {'seconds':>8s} {result.metric:>8s}")
        for point in result.curve:
            print(f"{point['step']:5d} {point['seconds']:8.1f} {point['value']:8.3f}")
        verdict = {True: "PASSED", False: "FAILED", None: "REPORTED"}[result.passed]
        against = f" against {result.threshold}" if result.threshold is not None else ""
        print(
            f"learn-test {result.name}: {verdict}: held-out {result.metric} {result.value:.3f}{against} "
            f"after {result.steps} steps, {result.seconds:.0f} s (curve: {out}/learning_curve.png)"
        )
    return 1 if result.passed is False else 0


def plot_runs_command(args) -> int:
    """Learning-test runs side by side (`--plot LABEL=FOLDER ...`), into the PNG `--out` names."""
    from system.rl.study import plot_runs

    if not args.out:
        raise CliError("--plot needs --out FILE.png, where the figure goes")
    runs = {}
    for spec in args.plot:
        label, sep, folder = spec.rpartition("=")
        folder = Path(folder)
        if not (folder / "metrics.jsonl").exists() or not (folder / "learning_test.json").exists():
            raise CliError(f"--plot {spec!r}: {folder} holds no learning test's metrics.jsonl and learning_test.json")
        runs[label if sep else folder.name] = folder
    plot_runs(runs, Path(args.out), args.name or "")
    print(f"figure: {args.out}")
    return 0


def study(args) -> int:
    """A settings study (system/rl/study.py): the test as shipped, then one setting at a time."""
    from system.config import ConfigError
    from system.rl.learning import load_learning_test
    from system.rl.study import StudyError, parse_axes, run_study

    if args.seeds < 1:
        raise CliError(f"--seeds {args.seeds}: a study needs at least 1 run per setting")
    try:
        axes = parse_axes(args.vary)
        cfg, _ = load_learning_test(args.name, args.overrides)
        out = Path(args.out or f"{cfg.run.out_dir}-study")
        run_study(args.name, out, axes, args.overrides, args.seeds)
    except (ConfigError, StudyError) as exc:
        raise CliError(str(exc)) from None
    print(f"study: {out}/study.md, {out}/study_curves.png")
    return 0


def plot_curve(result: dict, path: Path, title: str | None = None) -> None:
    """Held-out value against steps and against seconds, the baselines as flat lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result["curve"]
    if not curve:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    baselines = sorted({k for p in curve for k in p} - {"step", "seconds", "value"})
    colours = dict(zip(baselines, plt.get_cmap("tab10").colors[1:]))
    for ax, x in zip(axes, ("step", "seconds")):
        ax.plot([p[x] for p in curve], [p["value"] for p in curve], marker="o", color="black", label=result["name"])
        for key in baselines:
            values = [p[key] for p in curve if p.get(key) is not None]
            if values:
                ax.axhline(values[0], linestyle="--", color=colours[key], label=f"{key} {values[0]:.2f}")
        if result["threshold"] is not None:
            ax.axhline(result["threshold"], linestyle=":", color="black", label="pass")
        ax.set(xlabel=x, ylabel=f"held-out {result['metric']}", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    verdict = {True: "passed", False: "failed", None: "reported"}[result["passed"]]
    fig.suptitle(title or f"learning test {result['name']}: {verdict}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_commands(sub) -> None:
    p = sub.add_parser("learn-test", help="run a learning test: a short training that must reach a held-out score")
    p.add_argument("name", nargs="?", help="the test (configs/learning/NAME.yaml); none: list them")
    p.add_argument("overrides", nargs="*", help="key.sub=value applied to the test's config")
    p.add_argument("--list", action="store_true", help="list the learning tests and their pass rules")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", help="run folder (default the test's run.out_dir; a study's: that plus -study)")
    p.add_argument(
        "--vary",
        action="append",
        metavar="KEY=V1,V2",
        help="a settings study: the test as shipped, then each value of KEY with the rest as shipped "
        "(repeat for more keys); prints and writes steps and seconds to pass and each step's time by part",
    )
    p.add_argument(
        "--plot",
        action="append",
        metavar="LABEL=FOLDER",
        help="draw finished runs side by side into --out FILE.png instead of running (NAME is the title)",
    )
    p.add_argument("--seeds", type=int, default=1, help="a study's runs per setting (run.seed 0, 1, ...)")
    p.set_defaults(func=cmd_learn_test)
