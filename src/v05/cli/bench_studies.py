"""``v05 bench speed | rl-profile | value | value-speed | value-ablation | oracle-bins``: the measurements behind
the docs' speed, engine-profile and value-model figures (each module's docstring states its protocol).

Every option is checked, and the output folder made, before anything is measured; a user error is one red
line and exit code 2. The benchmark modules are imported only when a command runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from v05.cli.bench import parse_list, prepare_out
from v05.cli.errors import fail, user_errors

DATA = Path("../shared/data")
DATA_HELP = "The shared data folder (holding v0_demo and mmlupro_29models)."


def _echo_written(paths: dict[str, Path]) -> None:
    typer.echo(paths["markdown"].read_text())
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def speed(
    rollouts: int = typer.Option(10_000_000, min=1, help="Rollouts of the batch, in ragged groups of 1-16."),
    repeats: int = typer.Option(5, min=1, help="Timings per estimator; the best one counts."),
    out: Path = typer.Option(Path("runs/bench/speed"), help="Folder for speed.json, speed.md and speed.png."),
) -> None:
    """Time and peak memory of every estimator end to end on one large batch of ragged groups."""
    from v05.bench import speed as bench

    prepare_out(out)
    _echo_written(bench.write_report(bench.run(rollouts, repeats), out, repeats=repeats))


def rl_profile(
    rollouts: int = typer.Option(40000, min=1, help="Rollouts of every run."),
    seeds: str = typer.Option("0,1,2", help="RL seeds, comma-separated integers >= 0."),
    methods: str = typer.Option(None, help="Comma-separated method slugs (default: all)."),
    value_model: str = typer.Option("default", help="Value model for V0.5's prior: 'default' or a directory."),
    out: Path = typer.Option(Path("runs/bench/rl_profile"), help="Folder for rl_profile.json, .md, .png and the runs."),
) -> None:
    """Engine ablations and throughput: final accuracy, gradient noise, rollouts/s, generation rounds (docs/rl.md)."""
    from v05.bench import rl_profile as bench

    methods = methods or ",".join(m.slug for m in bench.METHODS)
    with user_errors():
        runs = bench.configs([m.strip() for m in methods.split(",")], parse_list(seeds, "--seeds", "int>=0"), rollouts,
                             value_model)
    prepare_out(out)
    args = {"rollouts": str(rollouts), "seeds": seeds, "methods": methods, "value_model": value_model, "out": str(out)}
    _echo_written(bench.write_report({"args": args, "results": bench.run(runs, out, progress=typer.echo)}, out))


def value_protocol(
    data: Path = typer.Option(DATA, help=DATA_HELP),
    out: Path = typer.Option(Path("runs/bench/value"), help="Folder for <cell>/value.json, .md, calibration.png "
                                                            "and summary.json, .md, .png over every cell in it."),
    settings: str = typer.Option("all", help="Comma-separated cells of the protocol, 'all' or 'none'."),
    encoder: str = typer.Option("minilm-l6-v2", help="Text encoder of every model."),
    mmlupro_subset: int = typer.Option(0, min=0, help="Evaluate and train on a fixed sample of this many mmlupro "
                                                      "questions (0: all)."),
    seeds: str = typer.Option("0,1,2", help="Seeds of every cell, comma-separated integers >= 0."),
    categories: str = typer.Option("", help="Comma-separated mmlupro categories of the per-category cells "
                                            "(default: all 14)."),
    n_boot: int = typer.Option(200, min=0, help="Bootstrap resamples of the 95% intervals."),
    priors: bool = typer.Option(False, help="Also measure the benchmark priors (default weights): priors.json."),
) -> None:
    """The value model against its rivals, in and out of domain, by the fixed protocol of
    v05.bench.value_protocol (docs/value.md)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    from v05.bench import value_protocol as bench

    cells = list(bench.CELLS) if settings == "all" else [] if settings == "none" else [c.strip() for c in settings.split(",")]
    if not data.is_dir():
        fail(f"--data {data}: not a folder; expected the shared data folder")
    with user_errors():
        seed_list = tuple(parse_list(seeds, "--seeds", "int>=0"))
        study = bench.Data(data, encoder, mmlupro_subset, categories)
        bench.check(cells, study)
    prepare_out(out)
    bench.run(out, cells, study, seeds=seed_list, n_boot=n_boot, priors=priors)


def value_speed(
    data: Path = typer.Option(DATA, help=DATA_HELP),
    model: str = typer.Option("default", help="Value model: 'default' or a directory."),
    repeats: int = typer.Option(20, min=1, help="Calls timed per memoised setting (their mean counts)."),
    out: Path = typer.Option(None, help="Optional JSON file for the figures."),
) -> None:
    """Prediction speed and memory of the value model in the RL engine's setting (docs/value.md)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import json

    from v05.bench import value_speed as bench
    from v05.value import ValueModel

    if out is not None and out.suffix != ".json":
        fail(f"--out {out}: expected a .json file")
    if not (data / "v0_demo").is_dir():
        fail(f"--data {data}: no v0_demo folder in it; expected the shared data folder")
    with user_errors("--model"):
        ValueModel.load(model)
    figures = bench.run(data, model, repeats)
    typer.echo(json.dumps(figures, indent=2))
    if out is not None:
        typer.echo(f"wrote {bench.write_report(figures, out)['json']}")


def value_ablation(
    data: Path = typer.Option(DATA, help=DATA_HELP),
    seed: int = typer.Option(0, min=0, help="Seed of the splits and folds."),
) -> None:
    """Design checks of the value model's head: loss, stacking prior, in-context GP correction (docs/value.md)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from v05.bench import value_ablation as bench

    for folder in ("v0_demo", "mmlupro_29models"):
        if not (data / folder).is_dir():
            fail(f"--data {data}: no {folder} folder in it; expected the shared data folder")
    bench.run(data, seed)


def oracle_bins(
    table: Path = typer.Option(..., help="Pass-rate table (.jsonl/.csv) or a shared data folder."),
    seed: int = typer.Option(0, min=0, help="Seed of the rollouts and the value model's prior."),
) -> None:
    """How much the estimated Bayes oracle depends on its prior bins (docs/method.md section 9)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from v05.bench import oracle_bins as bench
    from v05.data import load_any

    with user_errors("--table"):  # a TableError names the file, row and column
        data = load_any(table)
    with user_errors("--table"):  # e.g. a table without a 'prompt' column for the value model
        priors = bench.priors(data, seed)
    typer.echo(bench.sweeps(data, priors, str(table), seed), nl=False)


COMMANDS = {"speed": speed, "rl-profile": rl_profile, "value": value_protocol, "value-speed": value_speed,
            "value-ablation": value_ablation, "oracle-bins": oracle_bins}
"""``v05 bench`` sub-command name -> command."""
