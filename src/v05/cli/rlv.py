"""``v05 bench rlv``: the RL^V comparison on the built-in task (GRPO and V0.5, with and without the verifier
loss, at equal rollouts, several seeds), then every final checkpoint through ``v05 eval``'s machinery.

Settings are checked and the value model loaded before anything is trained; a user error is one red line
and exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from v05.cli.errors import user_errors


def rlv(
    out: Path = typer.Option(Path("runs/bench/rlv"), help="Folder for rlv.json, rlv.md, summary.json, plots, runs/ "
                                                          "and evals/."),
    quick: bool = typer.Option(False, help="CI-sized: 2 seeds x 4,000 rollouts, n_max 8 (a few minutes)."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated RL seeds (default 0,1,2,3,4)."),
    budgets: Optional[str] = typer.Option(None, help="Comma-separated rollouts per run (default 40000)."),
    n_max: Optional[int] = typer.Option(None, help="Solutions per held-out problem at evaluation (default 64)."),
    workers: Optional[int] = typer.Option(None, help="Runs in parallel (default 1)."),
    value_model: str = typer.Option("default", help="V0.5's prior and the value model scored beside the verifier."),
) -> None:
    """GRPO, GRPO + verifier, V0.5, V0.5 + verifier at equal rollouts: pass@1, test-time scaling (majority,
    Best-of-N, weighted vote, pass@N), the efficiency headline, verifier and value-model quality. Guide:
    docs/rlv.md."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from v05.bench.rlv import RlvSettings, run_rlv
    from v05.bench.rlv_report import write_report
    from v05.cli.bench import prepare_out
    from v05.value import ValueModel

    with user_errors():
        base = RlvSettings.quick() if quick else RlvSettings()
        changes = {"seeds": _integers(seeds, "--seeds") if seeds else None,
                   "budgets": _integers(budgets, "--budgets") if budgets else None,
                   "n_max": n_max, "workers": workers, "value_model": value_model}
        settings = RlvSettings(**{**base.__dict__, **{k: v for k, v in changes.items() if v is not None}})
        jobs = settings.jobs()
        ValueModel.load(settings.value_model)
    prepare_out(out)
    spent: dict = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn()) as bar:
        task = bar.add_task(f"{len(jobs)} runs", total=sum(j[1] for j in jobs))

        def advance(name, rollouts):
            spent[name] = rollouts
            bar.update(task, completed=sum(spent.values()), description=name)

        report = run_rlv(out, settings, progress=advance)
    paths = write_report(report, out)
    Console().print(paths["markdown"].read_text(), markup=False, highlight=False, soft_wrap=True)


def _integers(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
