"""``v05 bench``: benchmarks that write JSON, Markdown and PNG reports.

Every setting is checked, and the output folder made, before the table is read or anything is simulated;
the benchmark modules (scipy, matplotlib) are imported only when a command runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import typer

from v05._validation import check_choice
from v05.bench.regimes import METHODS as REGIME_METHODS
from v05.bench.regimes import PRESETS as REGIME_PRESETS
from v05.cli.errors import fail, handles_user_errors, user_errors

app = typer.Typer(no_args_is_help=True, help="Benchmarks.")

DEFAULT_NOISE = "0.25,0.5,1,2,4"
PRIORS = ("auto", "value")
MMLUPRO_VIEWS = ("halves", "models")


def parse_list(text: str, option: str, kind: str) -> list:
    """Comma-separated values of ``kind`` (``"int>=1"``, ``"int>=0"``, ``"int>=0|none"``, ``"float>=0"``, ``"fraction"``,
    ``"name"``)."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ValueError(f"{option} {text!r}: expected a comma-separated list, got nothing")
    return [_parse_item(x, option, kind) for x in items]


def _parse_item(item: str, option: str, kind: str):
    if kind == "name":
        return item
    if kind == "int>=0|none" and item.lower() == "none":
        return None
    allowed = {"int>=1": "integers >= 1", "int>=0": "integers >= 0", "int>=0|none": "integers >= 0 or 'none'",
               "float>=0": "numbers >= 0", "fraction": "numbers in [0, 1]"}[kind]
    real = kind in ("float>=0", "fraction")
    try:
        value = float(item) if real else int(item)
    except ValueError:
        what = "a number" if real else "an integer"
        raise ValueError(f"{option}: {item!r} is not {what}; expected comma-separated {allowed}") from None
    if not math.isfinite(value) or value < (1 if kind == "int>=1" else 0) or (kind == "fraction" and value > 1):
        raise ValueError(f"{option}: {item!r} is out of range; expected comma-separated {allowed}")
    return value


def prepare_out(out: Path) -> Path:
    """Make the output folder now, so that a path that cannot be one fails before any computation."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file; expected a folder (it will hold the JSON, Markdown and PNG reports)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"--out {out}: cannot create the folder ({e.strerror})")
    return out


@app.command("baseline")
@handles_user_errors
def baseline(
    table: Path = typer.Option(..., help="Pass-rate table (.jsonl/.csv) or a shared data folder."),
    out: Path = typer.Option(..., help="Output folder for baseline.json, baseline.md and the PNG plots."),
    k: str = typer.Option("1,2,4,8,16", help="Rollouts per prompt to simulate, comma-separated integers >= 1."),
    seeds: int = typer.Option(3, min=1, help="Independent simulations (each reshuffles batches and rollouts)."),
    prior_noise: str = typer.Option(
        None, help="Logit-noise SDs of synthetic priors (comma-separated). Default: "
        f"{DEFAULT_NOISE} when the table has no 'prior' column, none otherwise."),
    prior: str = typer.Option("auto", help="'auto' (table column and/or noise) or 'value' (adds the value model's priors)."),
    hallucination: str = typer.Option(
        None, help="Hallucination priors to add, comma-separated fractions in [0, 1]: good priors (logit noise 0.5) "
        "with that share mirrored (confidently wrong), e.g. 0.1,0.25."),
    oracle: bool = typer.Option(True, help="Also score the Bayes oracle (the limit; not a runnable estimator)."),
    osla: bool = typer.Option(False, help="Also score fused estimators on OSLA-allocated rollouts (uncapped, no "
                              "budget; --rules compares every rule at equal compute)."),
    osla_rule: str = typer.Option("paper", help="OSLA rules to run with --osla, comma-separated: paper, eb."),
    osla_max_rounds: str = typer.Option(
        None, help="With --osla: round caps (planner max_rounds) to run beside the uncapped planner, comma-separated "
        "integers >= 0 or 'none' (e.g. none,1,2,4); each capped run replays its uncapped run's rewards."),
    rules: str = typer.Option(
        None, help="Rollout rules to compare at equal compute, comma-separated name[:variant]: osla[:paper|eb], "
        "reinforce_ada[:balanced|positive_focused], knapsack, cures, dynamic. Each gets --budget-per-prompt and the "
        "first round --k-init; the mean and the fused estimators are scored on its rollouts."),
    budget_per_prompt: int = typer.Option(
        None, min=1, help="With --rules: every batch's rollout budget as rollouts per prompt, first round included "
        "(default 8); 'fixed' draws exactly this many for every prompt."),
    k_init: str = typer.Option("4", help="First-round rollouts per prompt: one integer >= 1 for --osla; with --rules, "
                               "comma-separated integers >= 1 (each a regime)."),
    k_max: int = typer.Option(16, min=1, help="OSLA: most rollouts per prompt."),
    cost: float = typer.Option(0.0039, help="OSLA: cost per rollout (squared +-1 reward units)."),
    batch_size: int = typer.Option(128, min=1, help="Prompts per batch (the empirical-Bayes fit is per batch)."),
    estimators: str = typer.Option(None, help="Comma-separated estimator names (default: all; 'mean' is always run, "
                                   "as every ratio's reference)."),
    mmlupro_view: str = typer.Option("halves", help="For the mmlupro_29models folder: 'halves' or 'models'."),
    seed: int = typer.Option(0, help="Base random seed."),
) -> None:
    """Simulate k Bernoulli rollouts per table row and score every estimator's baseline against the truth."""
    from v05.bench import baseline as bench
    from v05.bench import baseline_report as report
    from v05.data import load_any

    check_choice(prior, "--prior", PRIORS)
    check_choice(mmlupro_view, "--mmlupro-view", MMLUPRO_VIEWS)
    noise = parse_list(prior_noise, "--prior-noise", "float>=0") if prior_noise else None
    fractions = parse_list(hallucination, "--hallucination", "fraction") if hallucination else []
    config = bench_config(k=k, seeds=seeds, batch_size=batch_size, estimators=estimators, osla=osla,
                          osla_rule=osla_rule, osla_max_rounds=osla_max_rounds, k_init=k_init, k_max=k_max, cost=cost,
                          oracle=oracle, rules=rules, budget_per_prompt=budget_per_prompt)
    prepare_out(out)
    with user_errors("--table"):  # a TableError names the file, row and column
        data = load_any(table, mmlupro_view=mmlupro_view)
    if noise is None:
        noise = [] if data.prior is not None else parse_list(DEFAULT_NOISE, "noise", "float>=0")
    extra = []
    if prior == "value":
        from v05.bench.value_eval import bench_priors

        with user_errors("--prior value"):  # e.g. a table without a 'prompt' column
            mean, var = bench_priors(data, seed=seed)
        extra.append(bench.BenchPrior("value", mean, var))
    sources = bench.prior_sources(data, noise, np.random.default_rng(seed), extra, hallucination=fractions)
    result = bench.run(data, sources, config, seed=seed)
    paths = report.write_report(result, out, title=f"Baseline MSE on {table}")
    typer.echo(paths["markdown"].read_text())
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def bench_config(*, k: str, seeds: int, batch_size: int, estimators: str | None, osla: bool, osla_rule: str,
                 osla_max_rounds: str | None, k_init: str, k_max: int, cost: float, oracle: bool = True,
                 rules: str | None = None, budget_per_prompt: int | None = None):
    """The benchmark's settings from the command line, each error naming its option."""
    from v05.baselines import get_estimator
    from v05.bench.baseline import BenchConfig
    from v05.bench.baseline_rules import RuleSpec, RulesConfig
    from v05.budget import OslaConfig

    ks = tuple(parse_list(k, "--k", "int>=1"))
    k_inits = tuple(parse_list(k_init, "--k-init", "int>=1"))
    caps = [] if osla_max_rounds is None else parse_list(osla_max_rounds, "--osla-max-rounds", "int>=0|none")
    if caps and not osla:
        fail("--osla-max-rounds caps the OSLA planner's rounds: add --osla")
    if osla and len(k_inits) != 1:
        fail(f"--k-init {k_init!r}: --osla runs one first round; give one integer >= 1 (several only with --rules)")
    if budget_per_prompt is not None and not rules:
        fail(f"--budget-per-prompt {budget_per_prompt}: the budget of the --rules runs; add --rules")
    with user_errors("OSLA settings"):
        oslas = tuple(OslaConfig(k_init=k_inits[0], k_max=k_max, cost=cost, rule=r, max_rounds=None)
                      for r in parse_list(osla_rule, "--osla-rule", "name")) if osla else ()
    rules_config = None
    if rules is not None:
        with user_errors("--rules"):
            specs = tuple(RuleSpec.parse(r) for r in parse_list(rules, "--rules", "name"))
            rules_config = RulesConfig(specs, k_inits, 8 if budget_per_prompt is None else budget_per_prompt)
    names = {}
    if estimators:
        with user_errors("--estimators"):
            names = {"estimators": tuple(get_estimator(e).name for e in parse_list(estimators, "--estimators", "name"))}
    return BenchConfig(ks=ks, seeds=seeds, batch_size=batch_size, oslas=oslas, oracle=oracle, rules=rules_config,
                       max_rounds=tuple(c for c in dict.fromkeys(caps) if c is not None), **names)


@app.command("gradient")
@handles_user_errors
def gradient(
    out: Path = typer.Option(None, help="Folder for gradient.json, gradient.md, gradient.png and (built-in) "
                             "gradient_rules.png (default: runs/gradient, or runs/gradient-smollm2 with --policy smollm2)."),
    policy: str = typer.Option("builtin", help="'builtin' (the built-in task's GRU, exact gradient) or 'smollm2' "
                               "(SmolLM2-135M-Instruct, against a split-half reference; caches in <out>/cache)."),
    quick: bool = typer.Option(False, help="--policy smollm2 only: a few-minute run (4 prompts x 8 completions)."),
    k: str = typer.Option("2,4,8", help="Rollouts per prompt of each estimate, comma-separated integers >= 2."),
    prompts: int = typer.Option(None, min=1, help="Prompts in the batch (default 48; smollm2: 24)."),
    pool: int = typer.Option(None, min=2, help="Pre-drawn rollouts per prompt; each repeat draws k of them "
                             "(default 64; smollm2: 24, half of them the reference)."),
    repeats: int = typer.Option(200, min=2, help="Estimates per (estimator, prior, k)."),
    snapshots: str = typer.Option("0,13312", help="Policies measured: GRPO k=4 rollouts after the warm-up, "
                                  "comma-separated integers >= 0 (0 = the warm-up). Built-in only."),
    mc_rollouts: int = typer.Option(512, min=2, help="Rollouts per prompt of the Monte Carlo check. Built-in only."),
    noise_sd: float = typer.Option(0.5, help="Logit-noise SD of the noisy oracle prior. Built-in only."),
    hallucination: float = typer.Option(0.1, help="Share of mirrored priors in the hallucination prior. Built-in only."),
    value_model: str = typer.Option("default", help="Value model for the 'value' prior: 'default' or a directory."),
    history: str = typer.Option("4,8", help="m of each history(m) prior (m earlier rollouts of every prompt), "
                                "comma-separated integers >= 1. Built-in only."),
    rule_k_init: str = typer.Option("2,4", help="k_init of the rollout-rule cells (k_max 4 k_init, budget 2 k_init "
                                    "per prompt), comma-separated integers >= 2. Built-in only."),
    warmup_cache: Path = typer.Option(None, help="Folder of cached warm-ups (default: <out>/warmup). Built-in only."),
    seed: int = typer.Option(0, min=0, help="Random seed (prompts, rollouts, repeats, GRPO run)."),
) -> None:
    """Every estimator's policy-gradient error at k = 2, 4, 8: against the exact gradient (teacher forcing) on the
    built-in task (with history priors and every rollout rule at equal budget), or against a split-half
    reference on SmolLM2 (docs/rl.md)."""
    from v05.value import ValueModel

    check_choice(policy, "--policy", ("builtin", "smollm2"))
    if policy == "smollm2":
        return _lm_gradient(out or Path("runs/gradient-smollm2"), quick, k, prompts, pool, repeats, value_model, seed)
    if quick:
        fail("--quick: only with --policy smollm2")
    from v05.bench import gradient as bench
    from v05.bench import gradient_report as report

    out = out or Path("runs/gradient")
    with user_errors("settings"):
        settings = bench.GradientSettings(
            prompts=prompts or 48, pool=pool or 64, repeats=repeats, mc_rollouts=mc_rollouts, noise_sd=noise_sd,
            hallucination=hallucination, value_model=value_model, seed=seed,
            group_sizes=tuple(parse_list(k, "--k", "int>=1")),
            snapshots=tuple(parse_list(snapshots, "--snapshots", "int>=0")),
            history=tuple(parse_list(history, "--history", "int>=1")),
            rule_k_init=tuple(parse_list(rule_k_init, "--rule-k-init", "int>=1")))
    with user_errors("--value-model"):
        ValueModel.load(value_model)  # a missing model fails now, not after the first snapshot
    prepare_out(out)
    bar, task = _progress(bench.cell_count(settings))
    with bar:
        result = bench.run(settings, out, cache=warmup_cache, tick=_ticker(bar, task))
    paths = report.write_report(result, out)
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _lm_gradient(out: Path, quick: bool, k: str, prompts, pool, repeats: int, value_model: str, seed: int) -> None:
    """``v05 bench gradient --policy smollm2`` (:mod:`v05.bench.lm_gradient`)."""
    from v05.bench import lm_gradient as bench
    from v05.bench import lm_gradient_report as report
    from v05.value import ValueModel

    base = bench.LMGradientSettings.quick() if quick else bench.LMGradientSettings()
    changes = {"repeats": repeats, "value_model": value_model, "seed": seed,
               "prompts": prompts or base.prompts, "pool": pool or base.pool}
    with user_errors("--k"):
        ks = tuple(parse_list(k, "--k", "int>=1"))
    changes["group_sizes"] = base.group_sizes if quick and k == "2,4,8" else ks  # --quick's pool halves hold 4
    with user_errors("settings"):
        settings = bench.LMGradientSettings(**{**base.__dict__, **changes})
    with user_errors("--value-model"):
        ValueModel.load(value_model)
    with user_errors("--policy smollm2"):
        from v05.pretrained import smollm2_dir

        smollm2_dir()  # a missing model fails now
    prepare_out(out)
    bar, task = _progress(bench.units(settings))
    with bar:
        with user_errors("reference"):
            result = bench.run(settings, out, tick=_ticker(bar, task))
    paths = report.write_report(result, out)
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _progress(total: int):
    """A progress bar (not started) and its task."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return bar, bar.add_task("gradient", total=total)


def _ticker(bar, task):
    def tick(text: str, n: int) -> None:
        bar.update(task, advance=n, **({"description": text} if text else {}))
    return tick


@app.command("rl-regimes")
@handles_user_errors
def rl_regimes(
    out: Path = typer.Option(Path("runs/regimes"), help="Folder for regimes.json, regimes.md, regimes.png and runs."),
    seeds: str = typer.Option("0,1,2", help="RL seeds, comma-separated integers >= 0."),
    rollouts: int = typer.Option(10240, min=1, help="Rollouts of every run."),
    workers: int = typer.Option(2, min=1, help="Runs trained in parallel (one CPU thread each)."),
    value_model: str = typer.Option("default", help="Value model for V0.5's prior: 'default' or a directory."),
    difficulties: str = typer.Option("spread,u-shaped", help="Difficulty mixes to run, comma-separated: spread, "
                                     "u-shaped (e.g. half the map at a time)."),
    methods: str = typer.Option("registered", help=f"A named set ({', '.join(REGIME_PRESETS)}) or a comma-separated "
                                f"list, GRPO included, of {', '.join(REGIME_METHODS)}."),
) -> None:
    """Train methods over k x prompt stream x difficulty at equal rollouts (default: the registered map's GRPO,
    RLOO, V0.5 with value and oracle prior, V0.5 + OSLA; 'value-free': value-free priors; 'rules': every
    rollout rule, generation rounds counted)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from v05.bench import regimes as bench
    from v05.bench import regimes_report as report

    with user_errors("settings"):
        chosen = REGIME_PRESETS.get(methods.strip()) or tuple(parse_list(methods, "--methods", "name"))
        settings = bench.RegimeSettings(seeds=tuple(parse_list(seeds, "--seeds", "int>=0")), total_rollouts=rollouts,
                                        workers=workers, value_model=value_model, methods=chosen,
                                        difficulties=tuple(parse_list(difficulties, "--difficulties", "name")))
        for c, m, s in settings.jobs():
            settings.config(c, m, s)  # every run's settings checked before the first one trains
    prepare_out(out)
    n_runs = len(settings.jobs())
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("warm-ups, then runs", total=n_runs)

        def progress(item) -> None:
            if item is None:
                bar.update(task, advance=1)

        result = bench.run(settings, out, progress=progress)
    paths = report.write_report(result, out)
    typer.echo(paths["markdown"].read_text())
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
