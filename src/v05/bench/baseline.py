"""Baseline-MSE benchmark: simulate Bernoulli rollouts from real pass rates, score every estimator's baseline.

For each seed, prior source and k, every row of a pass-rate table gets k rollouts drawn from its pass rate
(taken as the truth); rows are shuffled into batches (as a trainer sees them) and each registered estimator
computes its baselines batch by batch. The score is the mean over prompts of the mean squared error of the
prompt's baselines against its true pass rate. At every fixed k the Bayes oracle (:mod:`v05.bench.oracle`: the
posterior mean under the true distribution of pass rates given the prior, the limit) is scored beside them,
as ``oracle``. With OSLA configs given, the fused estimators are also scored
on rollouts drawn by the rollout planner (k_init, top-ups in rounds to k_max), with the rollouts and the
generation rounds spent; such rows carry the rule's name in ``osla`` (``None`` for fixed k) and the round cap
in ``max_rounds`` (``None``: no cap). With ``rules`` (:mod:`v05.bench.baseline_rules`), every rollout rule runs
at equal compute (one budget, one first round) and the plain mean and the fused estimators are scored on its
rollouts, in ``rule_rows``.

Random numbers: seed s has one stream that shuffles the rows into batches and draws, in a fixed order (prior
source, then each k, then each OSLA rule), every fixed-k and every uncapped OSLA rollout, so these cells do
not depend on which estimators are scored. A round-capped run replays, prompt by prompt, the rewards its
rule's uncapped run drew (common random numbers) and draws any rollout beyond them from a stream of its own:
caps never change another cell, and the differences between caps are the planner's, not the dice's. The
rules draw from streams of their own too (:mod:`v05.bench.baseline_rules`: common random numbers across rules).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress

from v05._validation import check_number, check_positive_int
from v05.baselines import DEFAULT, Prior, UndefinedError, compute, get_estimator, list_estimators
from v05.stats import ci95
from v05.bench.baseline_rules import STREAM, RuleCells, RulesConfig, replay
from v05.bench.oracle import ORACLE, BinnedTruth, LogitNoiseTruth, TruthModel, clipped_logit, oracle_baseline
from v05.budget import RULES, Allocation, OslaConfig, allocate
from v05.data import PassRateTable

REFERENCE = "mean"
"""The plain group mean: always scored, every ratio in the report is to it."""
HALLUCINATION_SD = 0.5
"""Logit-noise SD of the good priors of a hallucination source (a good prior: MSE about 0.005)."""


@dataclass(frozen=True)
class BenchPrior:
    """One prior the benchmark scores the estimators under: a prior pass rate per table row and optionally its
    variance; ``name`` goes in the report. Each batch hands the estimators its rows as a
    :class:`v05.baselines.Prior` (:meth:`batch`).

    ``truth`` is the exact distribution of the truth given the prior where the source knows it (the
    synthetic priors); without it the benchmark estimates one from the table for the oracle (:class:`BinnedTruth`).
    """

    name: str
    prior: np.ndarray
    prior_var: np.ndarray | None = None
    truth: TruthModel | None = None

    def batch(self, rows: np.ndarray) -> Prior:
        """The prior of the table rows ``rows``, row j for the batch's prompt j."""
        return Prior(self.prior[rows], None if self.prior_var is None else self.prior_var[rows])


@dataclass(frozen=True)
class BenchConfig:
    """What the benchmark runs; checked when built.

    ``estimators`` may use aliases (``"v05"``); they are stored under their registered names, once each, with
    the plain mean added when missing. ``oslas`` are the uncapped OSLA runs (one per rule); each
    ``max_rounds`` cap adds a capped twin of every one of them. ``rules``: every rollout rule at equal compute,
    scored with the plain mean and the fused estimators.
    """

    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    seeds: int = 3
    batch_size: int = 128
    estimators: tuple[str, ...] = field(default_factory=lambda: tuple(list_estimators()))
    oslas: tuple[OslaConfig, ...] = ()
    max_rounds: tuple[int, ...] = ()
    oracle: bool = True
    """Also score the Bayes oracle (the limit, :mod:`v05.bench.oracle`) at every fixed k."""
    rules: RulesConfig | None = None

    def __post_init__(self):
        if not self.ks:
            raise ValueError("ks is empty: give at least one k (rollouts per prompt)")
        for i, k in enumerate(self.ks):
            check_positive_int(k, f"ks[{i}]")
        check_positive_int(self.seeds, "seeds")
        check_positive_int(self.batch_size, "batch_size")
        names = [get_estimator(name).name for name in self.estimators]  # unknown names list the known ones
        if REFERENCE not in names:
            names.insert(0, REFERENCE)
        object.__setattr__(self, "estimators", tuple(dict.fromkeys(names)))
        object.__setattr__(self, "oslas", tuple(OslaConfig.coerce(c) for c in self.oslas))
        rules = [c.rule for c in self.oslas]
        if len(set(rules)) != len(rules):
            raise ValueError(f"one OSLA config per rule; got rules {rules}")
        if any(c.max_rounds is not None for c in self.oslas):
            raise ValueError("oslas are the uncapped runs (max_rounds=None); give round caps in max_rounds")
        for cap in self.max_rounds:
            check_positive_int(cap, "max_rounds", minimum=0)
        if len(set(self.max_rounds)) != len(self.max_rounds):
            raise ValueError(f"max_rounds lists a cap twice: {list(self.max_rounds)}")
        if self.max_rounds and not self.oslas:
            raise ValueError("max_rounds caps OSLA runs: give at least one OSLA config")
        if self.oslas and not any(get_estimator(e).uses_prior for e in self.estimators):
            raise ValueError(f"OSLA runs score the estimators that fuse a prior, and none of {list(self.estimators)} "
                             "does (add e.g. v05)")
        if self.rules is not None:
            if not isinstance(self.rules, RulesConfig):
                raise TypeError(f"rules must be a RulesConfig; got {type(self.rules).__name__}")
            self.rules.check(self.batch_size)


def noise_prior(pass_rate: np.ndarray, sd: float, rng: np.random.Generator) -> BenchPrior:
    """The true pass rate with N(0, sd^2) noise on the logit scale; var is the delta-method variance."""
    sd = check_number(sd, "prior noise sd", minimum=0.0)
    values, counts = np.unique(pass_rate, return_counts=True)
    if sd == 0:
        return BenchPrior("noise=0", pass_rate.copy(), np.zeros_like(pass_rate),
                           LogitNoiseTruth(values, counts, clipped_logit(pass_rate), 0.0))
    logit = clipped_logit(pass_rate) + rng.normal(0.0, sd, size=len(pass_rate))
    prior = 1.0 / (1.0 + np.exp(-logit))
    return BenchPrior(f"noise={sd:g}", prior, (sd * prior * (1 - prior)) ** 2,
                       LogitNoiseTruth(values, counts, logit, sd))


def hallucination_prior(pass_rate: np.ndarray, fraction: float, rng: np.random.Generator,
                        sd: float = HALLUCINATION_SD) -> BenchPrior:
    """Mostly good priors, a ``fraction`` of them confidently wrong: the case a per-prompt test is for.

    Each row is hallucinated with probability ``fraction`` (one uniform draw per row, then the noise): its
    prior mirrors the truth, logit(V) = -logit(p) + N(0, sd^2) (an easy prompt called hard, a hard one
    easy); the others get logit(V) = logit(p) + N(0, sd^2). ``prior_var`` is the good priors' delta-method
    variance for every row, as an over-confident value model would report it.
    """
    fraction = check_number(fraction, "hallucination fraction", minimum=0.0, maximum=1.0)
    values, counts = np.unique(pass_rate, return_counts=True)
    logit = clipped_logit(pass_rate)
    wrong = rng.random(len(pass_rate)) < fraction
    logit = np.where(wrong, -logit, logit) + rng.normal(0.0, sd, size=len(pass_rate))
    prior = 1.0 / (1.0 + np.exp(-logit))
    return BenchPrior(f"halluc={fraction:g}", prior, (sd * prior * (1 - prior)) ** 2,
                       LogitNoiseTruth(values, counts, logit, sd, fraction))


def prior_sources(table: PassRateTable, noise: list[float] | None, rng: np.random.Generator,
                  extra: list[BenchPrior] = (), hallucination: list[float] = ()) -> list[BenchPrior]:
    """The table's own prior column (if any), one synthetic prior per noise level, ``extra``, then one
    hallucination prior per fraction (last, so that adding them shifts no other source's draws)."""
    sources = []
    if table.prior is not None:
        sources.append(BenchPrior("table", table.prior))
    for sd in noise or []:
        sources.append(noise_prior(table.pass_rate, sd, rng))
    sources.extend(extra)
    for fraction in hallucination:
        sources.append(hallucination_prior(table.pass_rate, fraction, rng))
    if not sources:
        raise ValueError("no prior: the table has no 'prior' column and no --prior-noise levels were given")
    return sources


def truth_model(source: BenchPrior, truth: np.ndarray) -> TruthModel:
    """The source's exact truth model, or one estimated from the table (:class:`BinnedTruth`)."""
    return source.truth if source.truth is not None else BinnedTruth.fit(source.prior, truth)


def _batches(n_rows: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n_rows)
    return [order[i : i + size] for i in range(0, n_rows, size)]


def _score(name: str, truth: np.ndarray, rewards: np.ndarray, group: np.ndarray, prior: Prior) -> np.ndarray | None:
    """Per-prompt MSE of one estimator's baselines on one batch (``group`` indexes the batch's prompts, rows of
    ``prior`` and ``truth``), or None where it is undefined."""
    est = get_estimator(name)
    if est.needs_prior_var and prior.var is None:
        return None
    try:
        res = compute(name, rewards, group, prior=prior if est.uses_prior else None)
    except UndefinedError:  # e.g. rloo with k = 1, or an empirical-Bayes fit with no group of >= 2 rollouts
        return None
    err = (res.baseline - truth[group]) ** 2
    return np.bincount(group, weights=err, minlength=len(prior)) / np.bincount(group, minlength=len(prior))


class Cells:
    """Sums per cell (estimator, k, prior, OSLA rule, max_rounds): pooled over seeds in arrival order (the
    reported MSE) and per seed (the confidence intervals); batches where the estimator is undefined are
    counted, not scored."""

    def __init__(self):
        self.pooled: dict[tuple, dict] = {}
        self.per_seed: dict[tuple, dict[int, dict]] = {}
        self.undefined: dict[tuple, int] = {}
        self.batches: dict[tuple, int] = {}

    def add(self, key: tuple, seed: int, per_prompt: np.ndarray | None, rollouts: float, rounds: int = 0) -> None:
        self.batches[key] = self.batches.get(key, 0) + 1
        if per_prompt is None:
            self.undefined[key] = self.undefined.get(key, 0) + 1
            return
        for entry in (self.pooled.setdefault(key, _zero()), self.per_seed.setdefault(key, {}).setdefault(seed, _zero())):
            entry["se"] += float(per_prompt.sum())
            entry["n"] += len(per_prompt)
            entry["rollouts"] += rollouts
            entry["rounds"] += rounds
            entry["scored"] += 1

    def rows(self) -> list[dict]:
        """One row per cell scored at least once, with per-seed values and 95% intervals."""
        out = []
        for key, e in self.pooled.items():
            name, k, prior, osla, cap = key
            seeds = list(self.per_seed[key].values())
            row = {"estimator": name, "k": k, "prior": prior, "osla": osla, "max_rounds": cap,
                   "mse": e["se"] / e["n"], "mean_rollouts": e["rollouts"] / e["n"],
                   "seeds": {"mse": [x["se"] / x["n"] for x in seeds],
                             "mean_rollouts": [x["rollouts"] / x["n"] for x in seeds]}}
            row["mse_ci95"] = ci95(row["seeds"]["mse"])
            if osla is not None:
                row["rounds"] = e["rounds"] / e["scored"]
                row["seeds"]["rounds"] = [x["rounds"] / x["scored"] for x in seeds]
            if key in self.undefined:
                row["undefined_batches"] = self.undefined[key]
            out.append(row)
        return out

    def never_defined(self) -> list[str]:
        return sorted({_cell_name(key) for key in self.batches if key not in self.pooled})

    def partly_defined(self) -> list[str]:
        return sorted(f"{_cell_name(key)}: undefined on {u} of {self.batches[key]} batches (left out of its MSE)"
                      for key, u in self.undefined.items() if key in self.pooled)


def _zero() -> dict:
    return {"se": 0.0, "n": 0, "rollouts": 0.0, "rounds": 0, "scored": 0}


def _cell_name(key: tuple) -> str:
    name, k, prior, osla, cap = key
    where = "" if osla is None else f", OSLA {osla}" + ("" if cap is None else f" max_rounds={cap}")
    return f"{name} at k={k} ({prior}{where})"


def _fixed_k(cells: Cells, s: int, k: int, batches, truth, source: BenchPrior, estimators, rng,
             oracle: TruthModel | None) -> None:
    """k rollouts for every prompt, every estimator (and the oracle, if given) scored on them."""
    for rows in batches:
        group = np.repeat(np.arange(len(rows)), k)
        rewards = (rng.random(len(group)) < truth[rows][group]).astype(np.float64)
        prior = source.batch(rows)
        for name in estimators:
            cells.add((name, k, source.name, None, None), s, _score(name, truth[rows], rewards, group, prior),
                      k * len(rows))
        if oracle is not None:
            err = (oracle_baseline(oracle, rows, rewards, group) - truth[rows]) ** 2
            cells.add((ORACLE, k, source.name, None, None), s, err, k * len(rows))


def _osla(cells: Cells, s: int, osla: OslaConfig, batches, truth, source: BenchPrior, fused, generators) -> list:
    """OSLA-planned rollouts for every batch (``generators[b]`` draws batch b's), the fused estimators scored."""
    allocations = []
    for rows, gen in zip(batches, generators):
        prior = source.batch(rows)
        alloc = allocate(gen, prior, config=osla)
        for name in fused:
            cells.add((name, osla.k_init, source.name, osla.rule, osla.max_rounds), s,
                      _score(name, truth[rows], alloc.rewards, alloc.group, prior),
                      float(alloc.counts.sum()), alloc.rounds)
        allocations.append(alloc)
    return allocations


def _bernoulli(rng: np.random.Generator, p: np.ndarray):
    """``generate(idx, n)`` drawing n[j] rollouts of prompt idx[j] from the stream ``rng``."""
    return lambda idx, n: (rng.random(n.sum()) < np.repeat(p[idx], n)).astype(np.float64)


def replay_rewards(alloc: Allocation, p: np.ndarray, k_max: int, rng: np.random.Generator) -> np.ndarray:
    """Reward j of prompt i for a capped twin, shape (M, k_max): the uncapped run's rewards in the order
    they were drawn, then fresh Bernoulli draws from ``rng``."""
    out = (rng.random((len(p), k_max)) < p[:, None]).astype(np.float64)
    order = np.argsort(alloc.group, kind="stable")  # prompt by prompt, each in drawing order
    group = alloc.group[order]
    start = np.cumsum(alloc.counts) - alloc.counts
    out[group, np.arange(len(group)) - start[group]] = alloc.rewards[order]
    return out


def _rules(cells: RuleCells, s: int, rules: RulesConfig, batches, truth, source: BenchPrior, estimators,
           stream: list[int]) -> None:
    """Every rule's allocation of every batch (one common-random-number table per batch), the estimators scored."""
    for b, rows in enumerate(batches):
        prior = source.batch(rows)
        for label, k_init, alloc in rules.allocations(prior, truth[rows], np.random.default_rng([*stream, b, STREAM])):
            scores = {name: _score(name, truth[rows], alloc.rewards, alloc.group, prior) for name in estimators}
            cells.add((label, k_init, source.name), s, alloc, scores)


def run(table: PassRateTable, sources: list[BenchPrior], config: BenchConfig, *, seed: int = 0,
        progress: bool = True) -> dict:
    """Run the benchmark; returns ``{"rows": [...], "default": ..., "prior_mse": {...}, ...}``."""
    truth = table.pass_rate
    fused = [e for e in config.estimators if get_estimator(e).uses_prior]
    cells, rule_cells = Cells(), RuleCells()
    steps = config.seeds * len(sources) * (len(config.ks) + len(config.oslas) * (1 + len(config.max_rounds))
                                           + (config.rules is not None))
    oracles = [truth_model(src, truth) if config.oracle else None for src in sources]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("baseline MSE", total=steps)
        for s in range(config.seeds):
            rng = np.random.default_rng([seed, s])
            batches = _batches(len(truth), config.batch_size, rng)
            for j, source in enumerate(sources):
                for k in config.ks:
                    _fixed_k(cells, s, k, batches, truth, source, config.estimators, rng, oracles[j])
                    bar.advance(task)
                for osla in config.oslas:
                    gens = [_bernoulli(rng, truth[rows]) for rows in batches]
                    allocations = _osla(cells, s, osla, batches, truth, source, fused, gens)
                    bar.advance(task)
                    replays = [replay_rewards(a, truth[rows], osla.k_max,
                                              np.random.default_rng([seed, s, j, b, RULES.index(osla.rule)]))
                               for b, (a, rows) in enumerate(zip(allocations, batches))] if config.max_rounds else []
                    for cap in config.max_rounds:
                        capped = dataclasses.replace(osla, max_rounds=cap)
                        _osla(cells, s, capped, batches, truth, source, fused, [replay(r) for r in replays])
                        bar.advance(task)
                if config.rules is not None:
                    _rules(rule_cells, s, config.rules, batches, truth, source, [REFERENCE] + fused, [seed, s, j])
                    bar.advance(task)
    result = {
        "rows": cells.rows(),
        "default": DEFAULT,
        "prior_mse": {s.name: float(np.mean((s.prior - truth) ** 2)) for s in sources},
        "undefined": cells.never_defined(),
        "partly_undefined": cells.partly_defined(),
        "oracle": {src.name: model.how for src, model in zip(sources, oracles) if model is not None},
        "config": {"ks": list(config.ks), "seeds": config.seeds, "batch_size": config.batch_size, "seed": seed,
                   "n_rows": len(truth), "osla": [vars(c) for c in config.oslas],
                   "max_rounds": list(config.max_rounds), "oracle": config.oracle},
    }
    if config.rules is not None:  # only then, so that a run without rules reproduces earlier reports byte for byte
        result["rule_rows"] = rule_cells.rows()
        result["config"]["rules"] = config.rules.as_dict()
    return result
