"""``v05 demo`` and ``v05 train``: the CPU RL engine from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for demo.json, summary.md, plots and run logs."),
    quick: bool = typer.Option(False, help="CI-sized run (under 2 minutes): 2 seeds, 4000 rollouts each."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated RL seeds (overrides the preset)."),
    rollouts: Optional[int] = typer.Option(None, help="Rollouts per run (overrides the preset)."),
    eval_every: Optional[int] = typer.Option(None, help="Held-out evaluation interval in rollouts."),
    train_prompts: Optional[int] = typer.Option(None, help="Training pool size."),
    workers: Optional[int] = typer.Option(None, help="Runs trained in parallel (one CPU thread each)."),
    value_model: str = typer.Option("default", help="Value model for V0.5's prior: 'default' or a directory."),
) -> None:
    """Train V0.5 (k_init=4 + OSLA), GRPO k=4, GRPO k=16 and DAPO k=16 at equal rollouts; write a report."""
    from v05.bench.demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if quick else DemoSettings()
    changes = {"seeds": _parse_seeds(seeds) if seeds else None, "total_rollouts": rollouts,
               "eval_every_rollouts": eval_every, "n_train_prompts": train_prompts, "workers": workers,
               "value_model": value_model}
    try:
        settings = DemoSettings(**{**settings.__dict__, **{k: v for k, v in changes.items() if v is not None}})
        n_runs = len(settings.configs())
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    spent: dict = {}
    with _progress() as bar:
        task = bar.add_task(f"{n_runs} runs", total=n_runs * settings.total_rollouts)

        def advance(method, seed, rollouts):
            spent[(method, seed)] = min(rollouts, settings.total_rollouts)
            bar.update(task, completed=sum(spent.values()), description=f"{method} seed {seed}")

        report = run_demo(out, settings, progress=advance)
    console.print((out / "summary.md").read_text())
    console.print(f"wrote {out / 'demo.json'} and plots; {len(report['runs'])} runs")


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as e:
        raise typer.BadParameter(f"--seeds {text!r}: expected comma-separated integers") from e


def train(
    config: Optional[Path] = typer.Option(None, help="JSON or TOML file of TrainConfig fields."),
    out: Path = typer.Option(Path("runs/train"), help="Run folder; a checkpoint there of the same config is resumed."),
    estimator: Optional[str] = typer.Option(None, help="Baseline estimator (registry name, e.g. v05, grpo, rloo, dapo)."),
    allocation: Optional[str] = typer.Option(None, help="'fixed' or 'osla'."),
    group_size: Optional[int] = typer.Option(None, help="Rollouts per prompt (k_init under OSLA)."),
    dynamic_sampling: Optional[bool] = typer.Option(None, help="DAPO's dynamic sampling."),
    total_rollouts: Optional[int] = typer.Option(None, help="Rollout budget of the run."),
    seed: Optional[int] = typer.Option(None, help="RL seed."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    checkpoint_every: Optional[int] = typer.Option(None, help="Steps between checkpoints (0: only the final one)."),
    set_: list[str] = typer.Option([], "--set", help="Any other field: --set key=value (value parsed as JSON)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train one method with full control; logs to metrics.jsonl and TensorBoard (<out>/tb), checkpoints."""
    from v05.rl.config import TrainConfig
    from v05.rl.loop import train as run

    try:
        data = TrainConfig.from_file(config).to_dict() if config else {}
        flags = {"estimator": estimator, "allocation": allocation, "group_size": group_size,
                 "dynamic_sampling": dynamic_sampling, "total_rollouts": total_rollouts, "seed": seed, "lr": lr,
                 "checkpoint_every": checkpoint_every}
        data.update({k: v for k, v in flags.items() if v is not None})
        data.update(_parse_sets(set_))
        cfg = TrainConfig.from_dict(data, source=str(config) if config else "flags")
    except (TypeError, ValueError, FileNotFoundError) as e:
        console.print(f"[red]bad config:[/red] {e}")
        raise typer.Exit(2) from e
    if progress:
        with _progress() as bar:
            task = bar.add_task(f"{cfg.estimator}", total=cfg.total_rollouts)
            result = run(cfg, out, on_record=lambda r: bar.update(task, completed=min(r["rollouts"], cfg.total_rollouts)))
    else:
        result = run(cfg, out)
    console.print(f"final held-out accuracy {result.final_accuracy:.3f} after {result.rollouts} rollouts; logs in {out}")


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
