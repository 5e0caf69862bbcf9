"""``v05 demo`` and ``v05 train``: the CPU RL engine from the command line.

A user error (a bad setting, a run folder that is a file, a corrupt run with no intact checkpoint, a
missing value model) is one red line and exit code 2 (:mod:`v05.cli.errors`), found before any long work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from v05.cli.errors import user_errors

console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for demo.json, summary.md, plots and run logs."),
    quick: bool = typer.Option(False, help="CI-sized run: 2 seeds x 4,000 rollouts (about a minute on 2 busy cores; "
                                           "36 CPU-seconds)."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated RL seeds (overrides the preset)."),
    rollouts: Optional[int] = typer.Option(None, help="Rollouts per run (overrides the preset)."),
    eval_every: Optional[int] = typer.Option(None, help="Held-out evaluation interval in rollouts."),
    train_prompts: Optional[int] = typer.Option(None, help="Training pool size."),
    workers: Optional[int] = typer.Option(None, help="Runs trained in parallel (one CPU thread each)."),
    value_model: str = typer.Option("default", help="Value model for V0.5's prior: 'default' or a directory."),
) -> None:
    """Train V0.5 (k_init=4 + OSLA), GRPO k=4, GRPO k=16 and DAPO k=16 at equal rollouts; write a report.

    The full demo (5 seeds x 40,000 rollouts) needs about 280 CPU-seconds: 7 minutes on 2 cores shared with
    other jobs.
    """
    from v05.bench.demo import DemoSettings, run_demo
    from v05.value import ValueModel

    with user_errors():
        _check_folder(out, "--out")
        settings = DemoSettings.quick() if quick else DemoSettings()
        changes = {"seeds": _parse_seeds(seeds) if seeds else None, "total_rollouts": rollouts,
                   "eval_every_rollouts": eval_every, "n_train_prompts": train_prompts, "workers": workers,
                   "value_model": value_model}
        settings = DemoSettings(**{**settings.__dict__, **{k: v for k, v in changes.items() if v is not None}})
        n_runs = len(settings.configs())
        ValueModel.load(settings.value_model)  # a missing model fails now, not in the workers
    spent: dict = {}
    with _progress() as bar:
        task = bar.add_task(f"{n_runs} runs", total=n_runs * settings.total_rollouts)

        def advance(method, seed, rollouts):
            spent[(method, seed)] = min(rollouts, settings.total_rollouts)
            bar.update(task, completed=sum(spent.values()), description=f"{method} seed {seed}")

        report = run_demo(out, settings, progress=advance)
    console.print((out / "summary.md").read_text(), markup=False, highlight=False)
    console.print(f"wrote {out / 'demo.json'} and plots; {len(report['runs'])} runs")


def train(
    config: Optional[Path] = typer.Option(None, help="JSON or TOML file of settings, one table per section "
                                                     "(--show-config prints one to start from)."),
    out: Path = typer.Option(Path("runs/train"), help="Run folder; a checkpoint there of the same config is resumed."),
    set_: list[str] = typer.Option([], "--set", help="One setting as section.key=value, value read as JSON "
                                                     "(e.g. --set osla.k_max=16); repeatable; applied last."),
    estimator: Optional[str] = typer.Option(None, help="= --set method.estimator=... (v05, grpo, rloo, dapo, ...)."),
    allocation: Optional[str] = typer.Option(None, help="= --set method.allocation=... ('fixed', 'osla', 'dynamic')."),
    group_size: Optional[int] = typer.Option(None, help="= --set method.group_size=... (OSLA: --set osla.k_init=...)."),
    total_rollouts: Optional[int] = typer.Option(None, help="= --set total_rollouts=... (the run's length in rollouts)."),
    seed: Optional[int] = typer.Option(None, help="= --set seed=... (the RL seed)."),
    lr: Optional[float] = typer.Option(None, help="= --set optim.lr=..."),
    checkpoint_every: Optional[int] = typer.Option(None, help="= --set checkpoint_every=... (0: only the final one)."),
    verifier: bool = typer.Option(False, "--verifier", help="= --set verifier.enabled=true: RL^V, the policy also "
                                                            "learns to verify its own rollouts (verifier.coef, "
                                                            "verifier.class_balance, verifier.loss; docs/rlv.md)."),
    show_config: bool = typer.Option(False, "--show-config", help="Print every setting with its documentation "
                                                                  "(as TOML, after --config and --set) and exit."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train one method; logs to <out>/metrics.jsonl and TensorBoard (<out>/tb), checkpoints in <out>/checkpoints.

    Settings: defaults, then --config, then the shortcut options, then --set. Top-level settings (seed,
    total_rollouts, temperature, checkpoint_every, threads) and sections method, osla, optim, policy, warmup,
    prior, task, eval, verifier; every setting with its documentation: v05 train --show-config. Running again on the
    same --out resumes the run.
    """
    from v05.rl.config import TrainConfig
    from v05.rl.loop import train_loop
    from v05.rl.settings import parse_assignments
    from v05.rl.setup import setup

    shortcuts = {"method.estimator": estimator, "method.allocation": allocation, "method.group_size": group_size,
                 "total_rollouts": total_rollouts, "seed": seed, "optim.lr": lr, "checkpoint_every": checkpoint_every,
                 "verifier.enabled": True if verifier else None}
    with user_errors():
        base = TrainConfig.from_file(config) if config else TrainConfig()
        settings = {**{k: v for k, v in shortcuts.items() if v is not None}, **parse_assignments(set_)}
        cfg = base.with_settings(settings)
        if show_config:
            typer.echo(cfg.to_toml(), nl=False)
            return
        _check_folder(out, "--out")
        _show_engine_messages()
        run, state = setup(cfg, out)
    if progress:
        with _progress() as bar:
            task = bar.add_task(cfg.method.estimator, total=cfg.total_rollouts, completed=state.rollouts)
            result = train_loop(run, state,
                                on_record=lambda r: bar.update(task, completed=min(r["rollouts"], cfg.total_rollouts)))
    else:
        result = train_loop(run, state)
    console.print(f"final held-out accuracy {result.final_accuracy:.3f} after {result.rollouts} rollouts; logs in {out}",
                  soft_wrap=True)


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None


def _check_folder(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path} is a file; expected a folder (it is created if missing)")


class _ConsoleHandler(logging.Handler):
    """The engine's messages (resuming, corrupt checkpoints skipped) on the console, warnings in yellow."""

    def emit(self, record: logging.LogRecord) -> None:
        style = "yellow" if record.levelno >= logging.WARNING else None
        console.print(record.getMessage(), style=style, markup=False, highlight=False, soft_wrap=True)


def _show_engine_messages() -> None:
    logger = logging.getLogger("v05.rl")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)
