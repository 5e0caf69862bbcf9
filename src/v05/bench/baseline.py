"""Baseline-MSE benchmark: simulate Bernoulli rollouts from real pass rates, score every estimator's baseline.

For each seed, prior source and k, every row of a pass-rate table gets k rollouts drawn from its pass rate
(taken as the truth); rows are shuffled into batches (as a trainer sees them) and each registered estimator
computes its baselines batch by batch. The score is the mean over prompts of the mean squared error of the
prompt's baselines against its true pass rate. With OSLA configs given, the fused estimators are also scored
on rollouts drawn by the OSLA allocator (k_init, top-ups in rounds to k_max), with the rollouts spent; such
rows carry the OSLA rule's name in ``osla`` (``None`` for fixed k).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress

from v05.baselines import DEFAULT, UndefinedError, compute, get_estimator, list_estimators
from v05.budget import OslaConfig, allocate
from v05.data import PassRateTable

LOGIT_CLIP = 1e-3
"""Pass rates are clipped to [1e-3, 1 - 1e-3] before the logit when synthetic priors are drawn."""


@dataclass(frozen=True)
class PriorSource:
    """A prior per table row (pass rate) and optionally its variance; ``name`` goes in the report."""

    name: str
    prior: np.ndarray
    prior_var: np.ndarray | None = None


@dataclass(frozen=True)
class BenchConfig:
    """What the benchmark runs; checked when built."""

    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    seeds: int = 3
    batch_size: int = 128
    estimators: tuple[str, ...] = field(default_factory=lambda: tuple(list_estimators()))
    oslas: tuple[OslaConfig, ...] = ()

    def __post_init__(self):
        if not self.ks or any(int(k) < 1 for k in self.ks):
            raise ValueError(f"ks={self.ks}: every k must be an int >= 1")
        if self.seeds < 1:
            raise ValueError(f"seeds == {self.seeds}, must be >= 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size == {self.batch_size}, must be >= 1")
        for name in self.estimators:
            get_estimator(name)  # unknown names raise, listing the known ones
        rules = [c.rule for c in self.oslas]
        if len(set(rules)) != len(rules):
            raise ValueError(f"one OSLA config per rule; got rules {rules}")


def noise_prior(pass_rate: np.ndarray, sd: float, rng: np.random.Generator) -> PriorSource:
    """The true pass rate with N(0, sd^2) noise on the logit scale; var is the delta-method variance."""
    if not (np.isfinite(sd) and sd >= 0):
        raise ValueError(f"prior noise sd == {sd!r}, must be a finite number >= 0")
    if sd == 0:
        return PriorSource("noise=0", pass_rate.copy(), np.zeros_like(pass_rate))
    p = np.clip(pass_rate, LOGIT_CLIP, 1 - LOGIT_CLIP)
    logit = np.log(p / (1 - p)) + rng.normal(0.0, sd, size=len(p))
    prior = 1.0 / (1.0 + np.exp(-logit))
    return PriorSource(f"noise={sd:g}", prior, (sd * prior * (1 - prior)) ** 2)


def prior_sources(table: PassRateTable, noise: list[float] | None, rng: np.random.Generator,
                  extra: list[PriorSource] = ()) -> list[PriorSource]:
    """The table's own prior column (if any), then one synthetic prior per noise level, then ``extra``."""
    sources = []
    if table.prior is not None:
        sources.append(PriorSource("table", table.prior))
    for sd in noise or []:
        sources.append(noise_prior(table.pass_rate, sd, rng))
    sources.extend(extra)
    if not sources:
        raise ValueError("no prior: the table has no 'prior' column and no --prior-noise levels were given")
    return sources


def _batches(n_rows: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n_rows)
    return [order[i : i + size] for i in range(0, n_rows, size)]


def _score(name: str, truth: np.ndarray, rewards: np.ndarray, group: np.ndarray, source: PriorSource,
           rows: np.ndarray) -> np.ndarray | None:
    """Per-prompt MSE of one estimator's baselines on one batch, or None where it is undefined."""
    est = get_estimator(name)
    if est.needs_prior_var and source.prior_var is None:
        return None
    try:
        res = compute(name, rewards, group, prior=source.prior[rows][group] if est.uses_prior else None,
                      prior_var=source.prior_var[rows][group] if est.needs_prior_var else None)
    except UndefinedError:  # e.g. rloo with k = 1, or an empirical-Bayes fit with no group of >= 2 rollouts
        return None
    err = (res.baseline - truth[group]) ** 2
    return np.bincount(group, weights=err, minlength=len(rows)) / np.bincount(group, minlength=len(rows))


def _accumulate(acc: dict, key: tuple, per_prompt: np.ndarray | None, rollouts: float) -> None:
    if per_prompt is None:
        acc.setdefault(key, None)
        return
    entry = acc.get(key) or {"se": 0.0, "n": 0, "rollouts": 0.0}
    entry["se"] += float(per_prompt.sum())
    entry["n"] += len(per_prompt)
    entry["rollouts"] += rollouts
    acc[key] = entry


def run(table: PassRateTable, sources: list[PriorSource], config: BenchConfig, *, seed: int = 0,
        progress: bool = True) -> dict:
    """Run the benchmark; returns ``{"rows": [...], "default": ..., "prior_mse": {...}, ...}``."""
    truth = table.pass_rate
    n_rows = len(truth)
    fused = [e for e in config.estimators if get_estimator(e).uses_prior]
    acc: dict[tuple, dict | None] = {}
    steps = config.seeds * len(sources) * (len(config.ks) + len(config.oslas))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("baseline MSE", total=steps)
        for s in range(config.seeds):
            rng = np.random.default_rng([seed, s])
            batches = _batches(n_rows, config.batch_size, rng)
            for source in sources:
                for k in config.ks:
                    for rows in batches:
                        group = np.repeat(np.arange(len(rows)), k)
                        rewards = (rng.random(len(group)) < truth[rows][group]).astype(np.float64)
                        for name in config.estimators:
                            scored = _score(name, truth[rows], rewards, group, source, rows)
                            _accumulate(acc, (name, k, source.name, None), scored, k * len(rows))
                    bar.advance(task)
                for osla in config.oslas:
                    for rows in batches:
                        p = truth[rows]
                        gen = lambda idx, n, p=p: (rng.random(n.sum()) < np.repeat(p[idx], n)).astype(np.float64)
                        var = None if source.prior_var is None else source.prior_var[rows]
                        alloc = allocate(gen, source.prior[rows], config=osla, prior_var=var)
                        for name in fused:
                            scored = _score(name, p, alloc.rewards, alloc.group, source, rows)
                            _accumulate(acc, (name, osla.k_init, source.name, osla.rule), scored,
                                        float(alloc.counts.sum()))
                    bar.advance(task)
    rows_out = []
    for (name, k, prior, osla), entry in acc.items():
        if entry is None:
            continue
        rows_out.append({"estimator": name, "k": k, "prior": prior, "osla": osla,
                         "mse": entry["se"] / entry["n"], "mean_rollouts": entry["rollouts"] / entry["n"]})
    return {
        "rows": rows_out,
        "default": DEFAULT,
        "prior_mse": {s.name: float(np.mean((s.prior - truth) ** 2)) for s in sources},
        "undefined": sorted({f"{name} at k={k} ({prior})" for (name, k, prior, _), e in acc.items() if e is None}),
        "config": {"ks": list(config.ks), "seeds": config.seeds, "batch_size": config.batch_size, "seed": seed,
                   "n_rows": n_rows, "osla": {c.rule: vars(c) for c in config.oslas}},
    }
