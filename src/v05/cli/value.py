"""``v05 value``: meta-train, apply and evaluate the generalist value model."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="The generalist value model (pass-rate prior with a variance).")


def _load(path: Path, mmlupro_view: str):
    from v05.data import load_any

    try:
        return load_any(path, mmlupro_view=mmlupro_view)
    except ValueError as e:  # TableError included: the message names file, row and column
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _model(name: str):
    from v05.value import ValueModel

    try:
        return ValueModel.load(name)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command("fit")
def fit(
    table: list[Path] = typer.Option(..., help="Pass-rate table(s) or shared data folder(s) with prompt texts; repeatable."),
    out: Path = typer.Option(..., help="Directory for config.json and weights.safetensors."),
    encoder: str = typer.Option("minilm-l6-v2", help="Text encoder: 'minilm-l6-v2' or 'hashing-<dim>'."),
    ridge: float = typer.Option(0.03, help="L2 penalty on the text-difficulty weights."),
    rank_weight: float = typer.Option(0.25, help="Weight of the pairwise ranking loss (rest: soft cross-entropy)."),
    mmlupro_view: str = typer.Option("models", help="For the mmlupro_29models folder: 'models' or 'halves'."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Meta-train a value model across the policies of the given tables."""
    import torch

    from v05.value import ValueModel

    torch.set_num_threads(1)
    tables = [_load(t, mmlupro_view) for t in table]
    vm = ValueModel(encoder=encoder, ridge=ridge, rank_weight=rank_weight, random_state=seed).fit(*tables)
    args = [a for t in table for a in ("--table", str(t))] + [
        "--out", str(out), "--encoder", encoder, "--ridge", f"{ridge:g}", "--rank-weight", f"{rank_weight:g}",
        "--mmlupro-view", mmlupro_view, "--seed", str(seed)]
    command = "v05 value fit " + " ".join(shlex.quote(a) for a in args)
    vm.save(out, command=command)
    typer.echo(f"{out}: {vm.n_policies_} policies, {vm.n_rows_} rows; tau2={vm.tau2_:g} s2={vm.s2_:g}")


@app.command("predict")
def predict(
    context: Path = typer.Option(..., help="Pass-rate table (one policy, with 'prompt') used as context."),
    targets: Path = typer.Option(..., help="Prompts to predict: .txt (one per line) or .jsonl with a 'prompt' field."),
    out: Path = typer.Option(..., help="Output .jsonl: one {prompt, mean, var} per target."),
    model: str = typer.Option("default", help="'default' or a model directory."),
    history: Path = typer.Option(None, help="Optional pass-rate table of other policies / earlier checkpoints."),
) -> None:
    """Predict the context policy's pass rate (and its variance) on each target prompt."""
    ctx = _load(context, "models")
    if ctx.prompt is None or len(ctx.policies) != 1:
        typer.echo(f"error: {context}: the context needs a 'prompt' column and exactly one policy "
                   f"(found {ctx.policies[:5]})", err=True)
        raise typer.Exit(2)
    prompts = _read_targets(targets)
    vm = _model(model)
    hist = None if history is None else _load(history, "models")
    n = None if ctx.n_samples is None else ctx.n_samples
    try:
        mean, var = vm.predict(ctx.prompt.tolist(), ctx.pass_rate, prompts, history=hist, context_n_samples=n)
    except (TypeError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for t, m, v in zip(prompts, mean, var):
            f.write(json.dumps({"prompt": t, "mean": float(m), "var": float(v)}, ensure_ascii=False) + "\n")
    typer.echo(f"{out}: {len(prompts)} predictions, mean {mean.mean():.3f}")


def _read_targets(path: Path) -> list[str]:
    if not path.is_file():
        typer.echo(f"error: {path}: no such file", err=True)
        raise typer.Exit(2)
    if path.suffix.lower() == ".txt":
        prompts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        prompts = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                typer.echo(f"error: {path}, row {i}: not valid JSON ({e.msg})", err=True)
                raise typer.Exit(2) from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                typer.echo(f"error: {path}, row {i}: expected an object with a string 'prompt'", err=True)
                raise typer.Exit(2)
            prompts.append(row["prompt"])
    if not prompts:
        typer.echo(f"error: {path}: no target prompts", err=True)
        raise typer.Exit(2)
    return prompts


@app.command("eval")
def evaluate(
    table: Path = typer.Option(..., help="Pass-rate table with a 'prompt' column, or a shared data folder."),
    out: Path = typer.Option(..., help="Output folder for value.json, value.md and calibration.png."),
    model: str = typer.Option("default", help="'default' or a model directory (ignored with --refit-folds)."),
    refit_folds: int = typer.Option(0, min=0, help="If > 0, meta-train on the table itself, leaving each fold of "
                                     "policies out of the model that predicts it (honest when --model saw the table)."),
    split: str = typer.Option("half", help="'half' (random half of each policy's rows as context) or 'column' "
                              "(the table's split == 'context')."),
    mmlupro_view: str = typer.Option("models", help="For the mmlupro_29models folder: 'models' or 'halves'."),
    seed: int = typer.Option(0, help="Random seed of the split."),
) -> None:
    """Evaluate the value model and baselines; rows of other policies serve as history."""
    import torch

    from v05.bench.value_eval import evaluate as run_eval
    from v05.bench.value_eval import leave_policies_out
    from v05.bench.value_report import markdown_table, write_report

    torch.set_num_threads(1)
    data = _load(table, mmlupro_view)
    if data.prompt is None:
        typer.echo(f"error: {table}: the table has no 'prompt' column; the value model needs prompt texts", err=True)
        raise typer.Exit(2)
    if refit_folds:
        models = leave_policies_out(data, n_folds=refit_folds, seed=seed)
        source = f"refit on the table, {refit_folds} folds of policies left out"
    else:
        models = _model(model)
        source = f"model {model!r}"
    try:
        result = run_eval(data, models, split=split, seed=seed)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    meta = {"table": str(table), "model": source, "split": split, "seed": seed}
    doc = write_report(result, out, title=f"value model on {table.name} ({source}, split={split})", meta=meta)
    typer.echo(markdown_table(doc))
