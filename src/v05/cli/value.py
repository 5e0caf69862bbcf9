"""``v05 value``: meta-train, apply and evaluate the generalist value model.

Every user error (a bad option, a malformed table or weight file) ends the command with one red line naming
the field, the value and what is allowed, exit code 2 (:mod:`v05.cli.errors`); options are checked before
any table is read or any text embedded.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer

from v05.cli.errors import fail, handles_user_errors, user_errors

app = typer.Typer(no_args_is_help=True, help="The generalist value model (pass-rate prior with a variance).")

SPLITS = ("half", "column")
MMLUPRO_VIEWS = ("models", "halves")


def _one_thread() -> None:
    """One CPU thread for torch and for BLAS: the value model's small matrices gain nothing from more, and on a
    shared machine a multi-threaded BLAS call can be 20 times slower than a single-threaded one."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def _warn(message: str) -> None:
    """One yellow ``warning:`` line on stderr (the command goes on)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold yellow]warning:[/bold yellow] {escape(message)}")


def _choice(value: str, option: str, allowed) -> None:
    if value not in allowed:
        fail(f"{option} {value!r}: expected one of {', '.join(allowed)}")


def _out_dir(path: Path, option: str = "--out") -> None:
    if path.exists() and not path.is_dir():
        fail(f"{option} {path}: exists and is not a folder")


def _load(path: Path, mmlupro_view: str, *, category: Optional[str] = None, need_prompts: bool = True):
    """A pass-rate table (file or shared folder); errors name the file, row and column."""
    from v05.data import load_any, load_mmlupro

    with user_errors(f"{path}"):
        if category is not None:
            if not (path / "correct.csv").is_file():
                raise ValueError("--category applies only to the mmlupro_29models folder")
            table = load_mmlupro(path, view=mmlupro_view, category=category)
        else:
            table = load_any(path, mmlupro_view=mmlupro_view)
    if need_prompts and table.prompt is None:
        fail(f"{path}: the table has no 'prompt' column; the value model needs prompt texts")
    return table


def _model(name: str):
    from v05.value import ValueModel

    with user_errors(f"--model {name}"):
        return ValueModel.load(name)


@app.command("fit")
@handles_user_errors
def fit(
    table: list[Path] = typer.Option(..., help="Pass-rate table(s) or shared data folder(s) with prompt texts; repeatable."),
    out: Path = typer.Option(..., help="Directory for config.json and weights.safetensors."),
    encoder: str = typer.Option("minilm-l6-v2", help="Text encoder: 'minilm-l6-v2', 'smollm2-135m-l<layer>' or "
                                "'hashing-<dim>'."),
    ridge: float = typer.Option(0.03, help="L2 penalty on the text-difficulty weights (> 0)."),
    rank_weight: float = typer.Option(0.25, help="Weight of the pairwise ranking loss in [0, 1] (rest: soft cross-entropy)."),
    adapt: bool = typer.Option(True, help="Correct the text prior in context at prediction time (v05.value.adapt)."),
    correction: str = typer.Option("embedding", help="Which correction --adapt applies: 'embedding' (v05.value.adapt) "
                                   "or 'surface' (surface features, strength and variance by leave-one-out: "
                                   "v05.value.adapt_loo)."),
    mmlupro_view: str = typer.Option("models", help="For the mmlupro_29models folder: 'models' or 'halves'."),
    seed: int = typer.Option(0, min=0, help="Random seed."),
) -> None:
    """Meta-train a value model across the policies of the given tables."""
    from v05.value import ValueModel
    from v05.value.model import CORRECTIONS

    _choice(mmlupro_view, "--mmlupro-view", MMLUPRO_VIEWS)
    _choice(correction, "--correction", CORRECTIONS)
    _out_dir(out)
    vm = ValueModel(encoder=encoder, ridge=ridge, rank_weight=rank_weight, adapt=adapt, correction=correction,
                    random_state=seed)
    vm.validate_params()
    _one_thread()
    tables = [_load(t, mmlupro_view) for t in table]
    vm.fit(*tables)
    args = [a for t in table for a in ("--table", str(t))] + [
        "--out", str(out), "--encoder", encoder, "--ridge", f"{ridge:g}", "--rank-weight", f"{rank_weight:g}",
        "--adapt" if adapt else "--no-adapt", "--correction", correction, "--mmlupro-view", mmlupro_view, "--seed", str(seed)]
    vm.save(out, command="v05 value fit " + " ".join(shlex.quote(a) for a in args))
    typer.echo(f"{out}: {vm.n_policies_} policies, {vm.n_rows_} rows; tau2={vm.tau2_:g} s2={vm.s2_:g}")


@app.command("predict")
@handles_user_errors
def predict(
    context: Path = typer.Option(..., help="Pass-rate table (one policy, with 'prompt') used as context."),
    targets: Path = typer.Option(..., help="Prompts to predict: .txt (one per line) or .jsonl with a 'prompt' field."),
    out: Path = typer.Option(..., help="Output .jsonl: one {prompt, mean, var} per target."),
    model: str = typer.Option("default", help="'default' or a model directory."),
    history: Path = typer.Option(None, help="Optional pass-rate table of other policies / earlier checkpoints."),
) -> None:
    """Predict the context policy's pass rate (and its variance) on each target prompt."""
    if out.is_dir():
        fail(f"--out {out}: is a folder; expected a .jsonl file path")
    vm = _model(model)
    ctx = _load(context, "models")
    if len(ctx.policies) != 1:
        fail(f"--context {context}: the context must hold exactly one policy; found {len(ctx.policies)} "
             f"({', '.join(ctx.policies[:5])})")
    prompts = _read_targets(targets)
    _one_thread()
    hist = None if history is None else _load(history, "models")
    mean, var = vm.predict(ctx.prompt.tolist(), ctx.pass_rate, prompts, history=hist, context_n_samples=ctx.n_samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for t, m, v in zip(prompts, mean, var):
            f.write(json.dumps({"prompt": t, "mean": float(m), "var": float(v)}, ensure_ascii=False) + "\n")
    typer.echo(f"{out}: {len(prompts)} predictions, mean {mean.mean():.3f}")


def _read_targets(path: Path) -> list[str]:
    if not path.is_file():
        fail(f"--targets {path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        fail(f"--targets {path}: not UTF-8 text ({e.reason} at byte {e.start})")
    if path.suffix.lower() == ".txt":
        prompts = [line for line in lines if line.strip()]
    else:
        prompts = []
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"--targets {path}, row {i}: not valid JSON ({e.msg})")
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                fail(f"--targets {path}, row {i}: expected an object with a string 'prompt'")
            prompts.append(row["prompt"])
    if not prompts:
        fail(f"--targets {path}: no target prompts")
    return prompts


@app.command("eval")
@handles_user_errors
def evaluate(
    table: Path = typer.Option(..., help="Pass-rate table with a 'prompt' column, or a shared data folder."),
    out: Path = typer.Option(..., help="Output folder for value.json, value.md and calibration.png."),
    model: str = typer.Option("default", help="'default' or a model directory; with --refit-folds or --train-table "
                              "its settings (encoder, ridge, ...) are used for the refits."),
    refit_folds: int = typer.Option(0, min=0, help="If > 0, meta-train one model per fold of the evaluated policies, "
                                    "each without them (honest when --model saw the table)."),
    train_table: Optional[list[Path]] = typer.Option(None, help="Out of domain: meta-train on these tables instead "
                                                     "(repeatable), minus every row on a prompt of --table; with "
                                                     "--refit-folds also minus the evaluated fold's policies."),
    category: Optional[str] = typer.Option(None, help="For the mmlupro_29models folder: evaluate only this category."),
    encoder: Optional[str] = typer.Option(None, help="Encoder of the refitted models (default: --model's)."),
    split: str = typer.Option("half", help="'half' (random half of each policy's rows as context) or 'column' "
                              "(the table's split == 'context')."),
    mmlupro_view: str = typer.Option("models", help="For the mmlupro_29models folder: 'models' or 'halves'."),
    seed: int = typer.Option(0, min=0, help="Random seed of the split and the policy folds."),
    n_boot: int = typer.Option(200, min=0, help="Bootstrap resamples for the 95% intervals (0: none)."),
) -> None:
    """Evaluate the value model and baselines; rows of other policies serve as history."""
    from v05.bench.value_eval import evaluate as run_eval
    from v05.bench.value_eval import in_sample_warning, leave_policies_out
    from v05.bench.value_report import write_report
    _choice(split, "--split", SPLITS)
    _choice(mmlupro_view, "--mmlupro-view", MMLUPRO_VIEWS)
    _out_dir(out)
    if refit_folds == 1 and not train_table:
        fail("--refit-folds 1: a fold's model would have no training policies; use 0 or >= 2")
    base = _model(model)
    params = {k: v for k, v in base.get_params().items() if k != "cache_dir"}
    if encoder is not None:
        params["encoder"] = encoder
        with user_errors("--encoder"):
            type(base)(**params).validate_params()
    _one_thread()
    data = _load(table, mmlupro_view, category=category)
    trains = [_load(t, mmlupro_view) for t in train_table or ()]
    if trains or refit_folds:
        models = leave_policies_out(data, n_folds=refit_folds, seed=seed, train_tables=trains or None, **params)
        source = (f"trained on {', '.join(map(str, train_table))} minus the evaluated prompts" if trains
                  else "refit on the table") + (f", {refit_folds} folds of policies left out" if refit_folds else "")
    else:
        models, source = base, f"model {model!r}"
    result = run_eval(data, models, split=split, seed=seed, n_boot=n_boot)
    warning = in_sample_warning(result["in_sample"])
    meta = {"table": str(table), "category": category, "model": source, "split": split, "seed": seed,
            "in_sample": {**result["in_sample"], "warning": warning}}
    name = table.name + (f" ({category})" if category else "")
    paths = write_report(result, out, title=f"value model on {name} ({source}, split={split})", meta=meta)
    typer.echo(paths["markdown"].read_text())
    if warning:
        _warn(warning)
