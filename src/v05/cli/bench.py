"""``v05 bench``: benchmarks that write JSON, Markdown and PNG reports."""

from pathlib import Path

import numpy as np
import typer

from v05.baselines import list_estimators
from v05.bench import baseline as bench_baseline
from v05.bench import baseline_report as report
from v05.budget import OslaConfig
from v05.data import load_any

app = typer.Typer(no_args_is_help=True, help="Benchmarks.")

DEFAULT_NOISE = "0.25,0.5,1,2,4"


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name} must be a comma-separated list of numbers; got {text!r}") from None


@app.command("baseline")
def baseline(
    table: Path = typer.Option(..., help="Pass-rate table (.jsonl/.csv) or a shared data folder."),
    out: Path = typer.Option(..., help="Output folder for baseline.json, baseline.md and the PNG plots."),
    k: str = typer.Option("1,2,4,8,16", help="Rollouts per prompt to simulate, comma-separated."),
    seeds: int = typer.Option(3, min=1, help="Independent simulations (each reshuffles batches and rollouts)."),
    prior_noise: str = typer.Option(
        None, help="Logit-noise SDs of synthetic priors (comma-separated). Default: "
        f"{DEFAULT_NOISE} when the table has no 'prior' column, none otherwise."),
    prior: str = typer.Option("auto", help="'auto' (table column and/or noise) or 'value' (adds the value model's priors)."),
    osla: bool = typer.Option(False, help="Also score fused estimators on OSLA-allocated rollouts."),
    osla_rule: str = typer.Option("paper", help="OSLA rules to run with --osla, comma-separated: paper, eb."),
    k_init: int = typer.Option(4, min=1, help="OSLA: initial rollouts per prompt."),
    k_max: int = typer.Option(16, min=1, help="OSLA: most rollouts per prompt."),
    cost: float = typer.Option(0.0039, help="OSLA: cost per rollout (squared +-1 reward units)."),
    batch_size: int = typer.Option(128, min=1, help="Prompts per batch (the empirical-Bayes fit is per batch)."),
    estimators: str = typer.Option(None, help="Comma-separated estimator names (default: all)."),
    mmlupro_view: str = typer.Option("halves", help="For the mmlupro_29models folder: 'halves' or 'models'."),
    seed: int = typer.Option(0, help="Base random seed."),
) -> None:
    """Simulate k Bernoulli rollouts per table row and score every estimator's baseline against the truth."""
    ks = tuple(int(x) for x in _floats(k, "--k"))
    try:
        data = load_any(table, mmlupro_view=mmlupro_view)
    except ValueError as e:  # TableError included: the message names file, row and column
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    noise = _floats(prior_noise, "--prior-noise") if prior_noise else ([] if data.prior is not None else _floats(DEFAULT_NOISE, "noise"))
    extra = []
    if prior == "value":
        from v05.bench.value_eval import bench_priors

        try:
            mean, var = bench_priors(data, seed=seed)
        except ValueError as e:  # e.g. a table without a 'prompt' column
            typer.echo(f"error: --prior value: {e}", err=True)
            raise typer.Exit(2) from None
        extra.append(bench_baseline.PriorSource("value", mean, var))
    elif prior != "auto":
        raise typer.BadParameter(f"--prior {prior!r}; expected 'auto' or 'value'")
    config = bench_baseline.BenchConfig(
        ks=ks, seeds=seeds, batch_size=batch_size,
        estimators=tuple(estimators.split(",")) if estimators else tuple(list_estimators()),
        oslas=tuple(OslaConfig(k_init=k_init, k_max=k_max, cost=cost, rule=r) for r in osla_rule.split(","))
        if osla else (),
    )
    sources = bench_baseline.prior_sources(data, noise, np.random.default_rng(seed), extra)
    result = bench_baseline.run(data, sources, config, seed=seed)
    paths = report.write(result, out, title=f"Baseline MSE on {table}")
    typer.echo(paths["markdown"].read_text())
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
