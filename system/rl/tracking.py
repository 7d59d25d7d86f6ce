"""Where step metrics go: W&B (offline unless a key is configured), `metrics.jsonl`, the console.

`metrics.jsonl` is the run's own record, one line per trained step. An attempt cuts the lines
from its first step on: those of an attempt that ended after its checkpoint (resumed there) or
before any checkpoint (started again from step 0), whose updates were lost. So it lists every
batch the weights were trained on once.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from rich.console import Console

from system.config import WandbConfig

CONSOLE_KEYS = (
    ("reward/mean", "reward", "{:+.3f}"),
    ("score/best", "best", "{:.3f}"),
    ("format_error_rate", "fmt_err", "{:.2f}"),
    ("loss", "loss", "{:+.4f}"),
    ("entropy", "entropy", "{:.3f}"),
    ("grad_norm", "gnorm", "{:.3f}"),
    ("time/step_s", "s", "{:.1f}"),
)


def _step(line: str) -> float:
    """A line's step; a line that a kill cut short counts as past every step (it is cut)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


def wandb_mode(cfg: WandbConfig) -> str:
    if cfg.mode != "auto":
        return cfg.mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    keyed = os.environ.get("WANDB_API_KEY") or "api.wandb.ai" in _netrc()
    return "online" if keyed else "offline"


def _netrc() -> str:
    try:
        return (Path.home() / ".netrc").read_text()
    except OSError:
        return ""


class Tracker:
    def __init__(self, cfg: WandbConfig, out_dir: Path, run_name: str, config: dict, first_step: int):
        """`first_step`: the step this attempt trains first (0, or its checkpoint's)."""
        self.out_dir = out_dir
        self.metrics_path = out_dir / "metrics.jsonl"
        self.console = Console(stderr=False, highlight=False)
        self._cut(first_step)
        self.run = None
        mode = wandb_mode(cfg)
        if mode != "disabled":
            import wandb

            id_file = out_dir / "wandb_run_id"
            run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
            id_file.write_text(run_id)
            self.run = wandb.init(
                project=cfg.project,
                entity=cfg.entity,
                name=run_name,
                id=run_id,
                resume="allow",
                mode=mode,
                dir=str(out_dir),
                config=config,
                tags=cfg.tags,
            )
            self.run.define_metric("eval/*", step_metric="train/step")

    def _cut(self, step: int) -> None:
        if not self.metrics_path.exists():
            return
        lines = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if _step(line) < step]
        if len(kept) < len(lines):
            cut = len(lines) - len(kept)
            print(f"{self.metrics_path}: {cut} line(s) from step {step} on cut (an earlier attempt's: trained again)")
            self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def log_step(self, step: int, total: int, metrics: dict) -> None:
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.run is not None:
            self.run.log({"train/step": step, **{f"train/{k}": v for k, v in metrics.items()}}, step=step)
        parts = [f"step {step + 1}/{total}"]
        for key, label, fmt in CONSOLE_KEYS:
            if key in metrics:
                parts.append(f"{label} {fmt.format(metrics[key])}")
        if metrics.get("skipped"):
            parts.append("(no update: every group's rewards were equal)")
        self.console.print("  ".join(parts))

    def log_eval(self, step: int, summary: dict, table_md: str, plot: Path) -> None:
        self.console.print(f"evaluation after step {step}:\n{table_md}")
        if self.run is None:
            return
        import wandb

        flat = {"train/step": step}
        for row in summary["rows"]:
            for name, value in row["averages"].items():
                flat[f"eval/{row['method']}/avg_{name}"] = value
        columns = ["method", *summary["tasks"], "avg all"]
        table = wandb.Table(columns=columns)
        for row in summary["rows"]:
            table.add_data(row["method"], *(row["per_task"].get(t) for t in summary["tasks"]), row["averages"]["all"])
        flat["eval/table"] = table
        if plot.exists():
            flat["eval/turn_curves"] = wandb.Image(str(plot))
        self.run.log(flat, step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
