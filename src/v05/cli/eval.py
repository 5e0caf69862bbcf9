"""``v05 eval``: test-time scaling curves of a policy (majority vote, Best-of-N, verifier-weighted vote,
pass@N) and the quality of its verifier beside the value model's.

Every setting, the policy, the problems file and the value model are checked before anything is sampled; a
user error is one red line and exit code 2 (:mod:`v05.cli.errors`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from v05.cli.errors import user_errors

console = Console()


def evaluate(
    policy: str = typer.Option(..., help="An engine run folder (or one of its checkpoints/step_NNNNNN), a "
                                         "transformers model folder, a .gguf file, or 'smollm2' (SmolLM2-135M-Instruct, "
                                         "shipped offline)."),
    problems: str = typer.Option("builtin", help="'builtin' (the built-in task's held-out set) or a JSONL problems "
                                                 "file in the format of ../shared/data/math_benchmarks."),
    out: Path = typer.Option(Path("runs/eval"), help="Folder for eval.json, eval.md, scaling.png, reliability.png."),
    n_max: int = typer.Option(64, help="Solutions sampled per problem; curves at N = 1, 2, 4, ... up to it."),
    limit: Optional[int] = typer.Option(None, help="Use only the first this many problems."),
    seed: int = typer.Option(0, help="Seed of the sampling, the subsets and the bootstrap."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default: the engine run's own; "
                                                           "1.0 for chat models)."),
    max_new_tokens: int = typer.Option(512, help="Chat models: most tokens per solution."),
    batch_size: int = typer.Option(16, help="Chat models: sequences per generation / verification call."),
    value_model: str = typer.Option("default", help="Value model scored beside the verifier ('none' to skip)."),
) -> None:
    """Sample N solutions per problem and report accuracy against N for majority vote, Best-of-N and weighted
    vote by the policy's own verifier, and pass@N, with bootstrap intervals; plus verifier and value-model
    AUC, ECE and reliability. Guide: docs/rlv.md."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    from v05.evaluate.run import EvalSettings, prepare, run_eval

    with user_errors():
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} is a file; expected a folder (it is created if missing)")
        settings = EvalSettings(policy=policy, problems=problems, n_max=n_max, limit=limit, seed=seed,
                                temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                value_model=value_model)
        prepared = prepare(settings)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        tasks: dict[str, int] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                what = "problems sampled" if phase == "sample" else "solutions verified"
                tasks[phase] = bar.add_task(what, total=total)
            bar.update(tasks[phase], completed=done)

        report = run_eval(prepared, out, progress=advance)
    console.print((out / "eval.md").read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {out / 'eval.json'}, eval.md, scaling.png, reliability.png "
                  f"({report['problems']['n']} problems x {n_max} solutions)", soft_wrap=True)
