"""Statistics for reports, pure numpy: quality of pass-rate predictions (intra-context AUC, ECE, reliability,
variance coverage) and intervals over seeds or bootstrap rows. Below every benchmark and `v05 eval`."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

POSITIVE_AT = 0.5
"""Targets are binarised as ``pass_rate >= 0.5`` for the AUC (V0's convention)."""


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC of ``score`` for binary ``label`` (Mann-Whitney, ties count 1/2); ``nan`` if one class is absent.

    Examples
    --------
    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    label = np.asarray(label, dtype=bool)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def intra_context_auc(score: np.ndarray, pass_rate: np.ndarray, group: np.ndarray) -> float:
    """AUC within each group (policy), averaged over the groups where both classes occur."""
    values = [auc(score[group == g], pass_rate[group == g] >= POSITIVE_AT) for g in np.unique(group)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def ece(mean: np.ndarray, pass_rate: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error: bin-size-weighted |mean prediction - mean pass rate| over equal-width bins."""
    bins = np.minimum((mean * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, mean - pass_rate, n_bins))
    return float(gap.sum() / max(count.sum(), 1))


def reliability(pred: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    """Reliability-diagram data over equal-width bins of the prediction: per non-empty bin its range, mean
    prediction, mean outcome and count (the bins behind :func:`ece`).

    Examples
    --------
    >>> reliability(np.array([0.05, 0.1, 0.9]), np.array([0, 1, 1]), n_bins=2)["outcome"]
    [0.5, 1.0]
    """
    pred, outcome = np.asarray(pred, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    bins = np.minimum((pred * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    used = np.flatnonzero(count)
    mean_pred = np.bincount(bins, pred, n_bins)[used] / count[used]
    mean_outcome = np.bincount(bins, outcome, n_bins)[used] / count[used]
    return {"lo": (used / n_bins).tolist(), "hi": ((used + 1) / n_bins).tolist(), "pred": mean_pred.tolist(),
            "outcome": mean_outcome.tolist(), "count": count[used].tolist()}


def observed_variance(mean: np.ndarray, var: np.ndarray, n_samples: np.ndarray) -> np.ndarray:
    """Variance of an observed pass rate from ``n_samples`` rollouts: ``var + (mean (1 - mean) - var) / n``."""
    return var + np.maximum(mean * (1 - mean) - var, 0.0) / n_samples


def coverage(mean, var, pass_rate, n_samples, level: float) -> float:
    """Fraction of observed pass rates within the central ``level`` normal interval of the predictive
    distribution of the *observation* (prior variance plus binomial sampling noise)."""
    half = norm.ppf(0.5 + level / 2) * np.sqrt(observed_variance(mean, var, n_samples))
    return float(np.mean(np.abs(pass_rate - mean) <= half + 1e-12))


COVERAGE_MIN_SAMPLES = 5
"""Coverage is scored on rows whose pass rate comes from at least this many samples: a 0/1 outcome is
never near a central interval, so its coverage says nothing about the predicted variance."""


def summarize(mean, pass_rate, group, *, var=None, n_samples=None, score=None) -> dict:
    """All metrics of one method as a dict.

    Coverage is added when ``var`` and ``n_samples`` are given and some rows have at least
    ``COVERAGE_MIN_SAMPLES`` samples (it is computed on those rows). ``score`` ranks prompts for the AUC
    (default ``mean``).
    """
    out = {
        "auc": intra_context_auc(mean if score is None else score, pass_rate, group),
        "brier": float(np.mean((mean - (pass_rate >= POSITIVE_AT)) ** 2)),
        "mse": float(np.mean((mean - pass_rate) ** 2)),
        "ece": ece(mean, pass_rate),
    }
    if var is not None and n_samples is not None and np.any(n_samples >= COVERAGE_MIN_SAMPLES):
        k = n_samples >= COVERAGE_MIN_SAMPLES
        out["coverage_1sigma"] = coverage(mean[k], var[k], pass_rate[k], n_samples[k], 0.6827)
        out["coverage_90"] = coverage(mean[k], var[k], pass_rate[k], n_samples[k], 0.90)
    return out


def ci95(values) -> float | None:
    """Half-width of the 95% Student-t interval of the mean of ``values`` (one per seed); None for fewer than
    two values (one seed has no spread to measure)."""
    from scipy.stats import t as t_dist

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    return float(t_dist.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def mean_interval(values) -> tuple[float, float, float]:
    """Mean of ``values`` (one per seed, or paired differences) and its 95% t-interval; NaN bounds for fewer
    than two values."""
    mean, half = float(np.mean(values)), ci95(values)
    return (mean, float("nan"), float("nan")) if half is None else (mean, mean - half, mean + half)


def bootstrap_rows(group: np.ndarray, *, n_boot: int = 200, seed: int = 0):
    """Yield ``n_boot`` row-index arrays, each resampling the rows of every group with replacement.

    Resampling within each group (policy) keeps each group's size, so intra-context metrics stay defined
    and two methods scored on the same indices give a paired comparison.
    """
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(group == g) for g in np.unique(group)]
    for _ in range(n_boot):
        yield np.concatenate([rows[rng.integers(0, len(rows), len(rows))] for rows in members])


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Central ``level`` percentile interval of bootstrap replicates (NaN replicates ignored)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
