"""`tlgrpo soak`: a real training under a seeded fault injector (system/soak/), then its account.
Exits 1 when a promise broke (a simulation lost, a batch trained twice or skipped, an answer
given to the wrong design)."""

from __future__ import annotations

import sys
from pathlib import Path

from system.cli.common import CliError, positive_int


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError
    return value


def cmd_soak(args) -> int:
    from system.soak.run import SoakSettings, broken_promises, run_soak

    if args.hang + args.crash > 1:
        raise CliError(f"--hang {args.hang} and --crash {args.crash} add up to more than 1")
    out = Path(args.out)
    if (out / "train" / "checkpoints").exists():
        raise CliError(f"{out} already holds a soak's training: choose another --out")
    settings = SoakSettings(
        out=out,
        seed=args.seed,
        steps=args.steps,
        hang=args.hang,
        crash=args.crash,
        concurrency=args.concurrency,
        sim_kill_every_s=args.sim_kill_every,
        death_every_updates=args.death_every,
        node_every_s=args.node_every,
        overrides=tuple(args.overrides),
    )
    report = run_soak(settings)
    print((out / "soak.md").read_text())
    print(f"wrote {out / 'soak.json'} and {out / 'soak.md'}")
    problems = broken_promises(report)
    for problem in problems:
        print(f"tlgrpo soak: {problem}", file=sys.stderr)
    return 1 if problems else 0


def add_commands(sub) -> None:
    p = sub.add_parser("soak", help="a real training under a seeded fault injector; reports what was lost (must be 0)")
    p.add_argument("overrides", nargs="*", help="key.sub=value on top of the soak's tiny training")
    p.add_argument("--out", default="runs/soak", help="where the training, soak.json and soak.md go")
    p.add_argument("--seed", type=int, default=0, help="the injector's and the load's seed")
    p.add_argument("--steps", type=positive_int, default=6, help="training steps")
    p.add_argument("--hang", type=_fraction, default=0.1, help="load designs that make ngspice hang")
    p.add_argument("--crash", type=_fraction, default=0.15, help="load designs that make ngspice kill itself")
    p.add_argument("--concurrency", type=positive_int, default=6, help="load requests in flight")
    p.add_argument("--sim-kill-every", type=_positive, default=5.0, help="mean seconds between simulation actor kills")
    p.add_argument(
        "--death-every", type=int, default=2, help="learner updates between a rollout or learner death (0: none)"
    )
    p.add_argument("--node-every", type=_positive, default=40.0, help="seconds between the second node joining/leaving")
    p.set_defaults(func=cmd_soak)
