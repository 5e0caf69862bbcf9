"""Test-time scaling from a pool of sampled solutions: majority vote, Best-of-N and verifier-weighted vote.

Given, for each of P problems, ``N_max`` sampled solutions with their final answers (a cluster id per
answer; -1 for none), their correctness and optionally a verifier score in [0, 1], this module estimates
what each strategy scores when it sees only N of them (N = 1, 2, 4, ..., N_max): the expected accuracy over
subsets of N drawn without replacement from the pool, exactly (all subsets) when there are few, by Monte
Carlo otherwise. Ties are broken uniformly at random, so a tie counts as the share of correct answers among
the tied ones. ``pass@N`` uses the unbiased estimator 1 - C(n - c, N) / C(n, N) (Chen et al., 2021).
Confidence intervals are percentile bootstraps over problems. Pure numpy: ``docs/method.md`` ("Test-time
scaling") states the rules.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from v05._validation import check_positive_int, py

STRATEGIES = ("majority", "best_of_n", "weighted")
"""Strategies that pick one answer; ``pass@N`` (any correct) is the ceiling reported beside them."""
NO_ANSWER = -1
"""Cluster id of a solution with no final answer: it never receives a vote."""


@dataclass(frozen=True)
class Pool:
    """Sampled solutions, shape (P problems, N_max samples) each.

    answer : int cluster id (0 .. N_max - 1) of each solution's final answer within its problem, or ``NO_ANSWER``.
    correct : whether the solution is correct (checked against the reference).
    score : verifier P("Yes") in [0, 1], or None.
    """

    answer: np.ndarray
    correct: np.ndarray
    score: np.ndarray | None = None

    def __post_init__(self):
        if self.answer.ndim != 2 or self.answer.shape != self.correct.shape:
            raise ValueError(f"answer {self.answer.shape} and correct {self.correct.shape} must be equal 2-D shapes "
                             "(problems, samples)")
        if self.answer.shape[1] < 1:
            raise ValueError("the pool needs at least one sample per problem")
        if self.answer.dtype.kind not in "iu" or self.answer.min() < NO_ANSWER or self.answer.max() >= self.n_max:
            raise ValueError(f"answer must hold int cluster ids in [0, {self.n_max}), or {NO_ANSWER} for no answer")
        if self.score is not None:
            if self.score.shape != self.answer.shape:
                raise ValueError(f"score {self.score.shape} must have the shape of answer {self.answer.shape}")
            bad = ~np.isfinite(self.score) | (self.score < 0) | (self.score > 1)
            if bad.any():
                p, j = map(int, np.argwhere(bad)[0])
                raise ValueError(f"score[{p}, {j}] = {py(self.score[p, j])!r}: verifier scores must be numbers in [0, 1]")
        for p, (ids, ok) in enumerate(zip(self.answer, self.correct.astype(bool))):
            if (ok & (ids == NO_ANSWER)).any():
                raise ValueError(f"problem {p}: a solution with no answer is marked correct")
            right, wrong = set(ids[ok].tolist()), set(ids[~ok].tolist())
            if right & wrong:
                raise ValueError(f"problem {p}: answer cluster {min(right & wrong)} holds correct and incorrect "
                                 "solutions; a cluster is one final answer, so its members share their correctness")

    @property
    def n_max(self) -> int:
        return self.answer.shape[1]


def answer_ids(keys: list[list]) -> np.ndarray:
    """Cluster ids per problem from answer keys (equal keys = same answer; ``None`` = no answer), (P, N).

    Examples
    --------
    >>> answer_ids([["3", "4", "3", None], ["x", "x", "y", "y"]]).tolist()
    [[0, 1, 0, -1], [0, 0, 1, 1]]
    """
    out = np.full((len(keys), len(keys[0]) if keys else 0), NO_ANSWER, dtype=np.int64)
    for p, row in enumerate(keys):
        if len(row) != out.shape[1]:
            raise ValueError(f"problem {p} has {len(row)} samples, problem 0 has {out.shape[1]}")
        ids: dict = {}
        for j, key in enumerate(row):
            if key is not None:
                out[p, j] = ids.setdefault(key, len(ids))
    return out


def sample_sizes(n_max: int) -> list[int]:
    """1, 2, 4, ... up to ``n_max`` (and ``n_max`` itself if it is not a power of two)."""
    sizes = [2**i for i in range(int(math.log2(n_max)) + 1)]
    return sizes if sizes[-1] == n_max else sizes + [n_max]


def subsets(n_max: int, n: int, max_subsets: int, rng: np.random.Generator) -> np.ndarray:
    """Index subsets of size ``n`` of ``range(n_max)``, shape (S, n): all of them if there are at most
    ``max_subsets``, else ``max_subsets`` drawn uniformly (each without replacement)."""
    if math.comb(n_max, n) <= max_subsets:
        return np.array(list(itertools.combinations(range(n_max), n)), dtype=np.int64).reshape(-1, n)
    return np.argsort(rng.random((max_subsets, n_max)), axis=1)[:, :n]


def _vote_accuracy(answer: np.ndarray, correct: np.ndarray, weight: np.ndarray, n_clusters: int) -> np.ndarray:
    """Expected accuracy of a weighted vote within each row (ties broken at random), shape (R,).

    answer, correct, weight : (R, n), cluster ids < ``n_clusters``; a row's top answer is the cluster with the
    largest summed weight among those present (a row with no answer at all scores 0).
    """
    rows = answer.shape[0]
    slots = n_clusters + 1  # slot 0: no answer
    flat = (np.arange(rows)[:, None] * slots + answer + 1).ravel()
    total = np.bincount(flat, weights=weight.ravel(), minlength=rows * slots).reshape(rows, slots)[:, 1:]
    present = np.bincount(flat, minlength=rows * slots).reshape(rows, slots)[:, 1:] > 0
    hit = np.bincount(flat, weights=correct.ravel(), minlength=rows * slots).reshape(rows, slots)[:, 1:] > 0
    best = np.where(present, total, -np.inf).max(axis=1, keepdims=True)
    top = present & (total >= best - 1e-12 * np.maximum(np.abs(best), 1.0))
    return np.where(top.any(axis=1), (top & hit).sum(axis=1) / np.maximum(top.sum(axis=1), 1), 0.0)


def _best_of_n_accuracy(correct: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Expected accuracy of picking the highest-scored sample of each row (ties at random), shape (R,)."""
    top = score >= score.max(axis=1, keepdims=True)
    return (top & correct).sum(axis=1) / top.sum(axis=1)


def pass_at(n_correct: np.ndarray, n_max: int, n: int) -> np.ndarray:
    """Unbiased pass@n from ``n_correct`` correct among ``n_max`` samples: 1 - C(n_max - c, n) / C(n_max, n)."""
    c = np.asarray(n_correct, dtype=np.int64)
    return np.array([1.0 - math.comb(n_max - int(x), n) / math.comb(n_max, n) for x in c])


def per_problem_accuracy(pool: Pool, n: int, *, max_subsets: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Expected accuracy of every strategy with ``n`` samples, per problem: ``{name: (P,)}``.

    ``best_of_n`` and ``weighted`` need verifier scores; ``majority`` and ``pass@n`` do not.
    """
    check_positive_int(n, "n")
    if n > pool.n_max:
        raise ValueError(f"n == {n}, must be <= the pool's {pool.n_max} samples per problem")
    rng = np.random.default_rng(seed)
    idx = subsets(pool.n_max, n, max_subsets, rng)  # (S, n), the same subsets for every problem
    n_sub = len(idx)
    answer = pool.answer[:, idx].reshape(-1, n)  # (P*S, n)
    correct = pool.correct[:, idx].reshape(-1, n).astype(bool)
    k = pool.n_max
    out = {"majority": _vote_accuracy(answer, correct, np.ones(answer.shape), k).reshape(-1, n_sub).mean(axis=1)}
    if pool.score is not None:
        score = pool.score[:, idx].reshape(-1, n)
        out["best_of_n"] = _best_of_n_accuracy(correct, score).reshape(-1, n_sub).mean(axis=1)
        out["weighted"] = _vote_accuracy(answer, correct, score, k).reshape(-1, n_sub).mean(axis=1)
    out["pass@n"] = pass_at(pool.correct.sum(axis=1), pool.n_max, n)
    return out


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (problems resampled with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def scaling_curves(pool: Pool, *, sizes=None, max_subsets: int = 256, n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of every strategy at every N with a bootstrap 95% interval.

    Returns ``{"n": [...], "strategies": {name: {"mean": [...], "lo": [...], "hi": [...]}}, "n_problems": P}``;
    the per-problem values behind each mean stay in ``"per_problem"`` for paired comparisons.
    """
    sizes = sample_sizes(pool.n_max) if sizes is None else list(sizes)
    curves: dict[str, dict[str, list]] = {}
    per_problem: dict[str, list] = {}
    for n in sizes:
        for name, acc in per_problem_accuracy(pool, n, max_subsets=max_subsets, seed=seed).items():
            lo, hi = bootstrap_ci(acc, n_boot=n_boot, seed=seed)
            entry = curves.setdefault(name, {"mean": [], "lo": [], "hi": []})
            entry["mean"].append(float(acc.mean()))
            entry["lo"].append(lo)
            entry["hi"].append(hi)
            per_problem.setdefault(name, []).append(acc)
    return {"n": sizes, "strategies": curves, "n_problems": int(pool.answer.shape[0]),
            "per_problem": {k: np.stack(v) for k, v in per_problem.items()}}


def samples_to_match(curves: dict, strategy: str, reference: str = "majority") -> int | None:
    """The smallest N at which ``strategy``'s mean accuracy reaches ``reference``'s at the largest N (None if
    it never does): the compute-efficiency headline (N_max / that N)."""
    target = curves["strategies"][reference]["mean"][-1]
    for n, acc in zip(curves["n"], curves["strategies"][strategy]["mean"]):
        if acc >= target - 1e-12:
            return int(n)
    return None
