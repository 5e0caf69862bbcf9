"""Empirical-Bayes shrinkage toward the batch: without a prior, or toward a prior calibrated on the batch.

The prior-free rivals of V0.5 and its calibrated form (``docs/method.md`` 3.11-3.13), all on the unit scale:

- ``eb_batch``: each group mean shrunk toward the batch's mean reward (or a ``global_mean`` kept across
  steps, :class:`~v05.baselines.running.RunningMoments`), EBPO-style; w = tau2 / (tau2 + sigma2/k) with
  ``v05_eb``'s moments about that centre.
- ``js_loo``: the leave-one-out James-Stein baseline: RLOO's mean of the other rollouts shrunk toward the
  other prompts' mean reward, the factor fitted on the other prompts only, so b_i never sees r_i.
- ``v05_eb_reg``: ``v05_eb`` toward a batch-fitted line a + b V of the group means on the prior
  (Efron-Morris), which also repairs a biased prior. ``slope=0`` gives ``eb_batch``, ``slope=1,
  intercept=0`` gives ``v05_eb``, exactly. ``v05_eb_reg_loo`` is its leave-one-out twin (the line and the
  moments fitted without the own group; ``slope=1, intercept=0`` gives ``v05_eb_loo`` exactly).

Edge-case rules: a batch whose line passes through every group mean (one group; two groups and a fitted
line) returns the group means (w = 1); all-equal groups count as exact means (sigma2 = 0: w = 1, as in
``v05_eb``); no group of >= 2 rollouts raises unless ``tau2`` is given; ``js_loo`` needs >= 2 rollouts per
group (as RLOO) and is RLOO exactly in a batch of fewer than 3 prompts.
"""

from __future__ import annotations

import numpy as np

from v05._validation import Number
from v05.baselines.batch import Batch
from v05.baselines.fused import TAU2, _loo_means, _tau2_sigma2, eb_gauss_terms, loo_tau2_sigma2
from v05.baselines.registry import KernelOut, UndefinedError, register
from v05.baselines.shrinkage import (
    bayes_weight,
    calibration_line,
    fuse,
    residual_inflation,
)

GLOBAL_MEAN = Number(minimum=0.0, maximum=1.0, optional=True,
                     hint="global_mean is the pass rate to shrink toward (e.g. a running mean across steps); "
                          "None uses the batch's mean reward")
"""The check of ``global_mean`` (``eb_batch``)."""
SLOPE = Number(optional=True, hint="slope of the calibration line a + b V: 0 ignores the prior (eb_batch), "
                                   "1 with intercept=0 trusts it as given (v05_eb), None fits it on the batch")
"""The check of ``slope`` (``v05_eb_reg``)."""
INTERCEPT = Number(optional=True, hint="intercept of the calibration line a + b V; None fits it on the batch")
"""The check of ``intercept`` (``v05_eb_reg``)."""
JS_MIN_GROUPS = 3
"""Prompts ``js_loo`` needs to shrink: the other prompts' means need a variance (>= 2 of them)."""


def _shrink_to_centre(batch: Batch, centre: np.ndarray, n_fitted: int, tau2: float | None, name: str,
                      report_weight: bool) -> KernelOut:
    """Normal-normal fusion of each group mean with its ``centre`` (a line with ``n_fitted`` fitted
    parameters): tau2 and sigma2 by ``v05_eb``'s moments about the centre, the squared deviations inflated
    by n/(n - p) for the fitted parameters."""
    if batch.n_groups <= n_fitted:  # the line passes through every group mean: nothing to shrink
        w = np.ones(batch.n_groups)
    else:
        d2, s2_g, informative = eb_gauss_terms(batch, centre, residual_inflation(batch.n_groups, n_fitted))
        if tau2 is None and informative.sum() <= 0:
            raise UndefinedError(
                f"{name} learns how far to shrink from groups with >= 2 rollouts, and this batch has none; "
                "pass tau2= (the spread of the true pass rates about the centre: 0 shrinks fully, inf not at all)"
            )
        tau2, sigma2 = _tau2_sigma2(d2.sum(), s2_g.sum(), informative.sum(), tau2, "this batch")
        w = np.clip(bayes_weight(tau2, sigma2 / batch.counts), 0.0, 1.0)
    return KernelOut(fuse(batch.mean, centre, w)[batch.inv], weight=w[batch.inv] if report_weight else None)


@register("eb_batch", options={"global_mean": GLOBAL_MEAN, "tau2": TAU2})
def eb_batch(batch: Batch, *, global_mean: float | None = None, tau2: float | None = None) -> KernelOut:
    """EBPO-style shrinkage of each group mean toward the batch mean, no prior needed.

    b = m + w (v - m), w = tau2 / (tau2 + sigma2/k), m the batch's mean reward (or ``global_mean``, e.g. a
    running mean across steps), tau2 and sigma2 by moments about m. ``tau2`` fixes the spread instead.
    """
    zeros = np.zeros(batch.n_groups)
    intercept, _, n_fitted = calibration_line(batch.mean, batch.counts, zeros, slope=0.0, intercept=global_mean)
    centre = np.full(batch.n_groups, intercept)
    return _shrink_to_centre(batch, centre, n_fitted, tau2, "eb_batch", report_weight=False)


@register("v05_eb_reg", uses_prior=True, options={"slope": SLOPE, "intercept": INTERCEPT, "tau2": TAU2})
def v05_eb_reg(batch: Batch, *, slope: float | None = None, intercept: float | None = None,
               tau2: float | None = None) -> KernelOut:
    """Empirical Bayes toward a batch-calibrated prior: b = m + w (v - m), m = clip(a + b V, 0, 1).

    The line is the weighted least-squares fit of the group means on the prior (weights = rollouts); tau2 and
    sigma2 are ``v05_eb``'s moments about it. ``weight`` is w, the weight on the mean against m (not V).
    ``slope=0`` is ``eb_batch``, ``slope=1, intercept=0`` is ``v05_eb``, exactly; all priors equal: slope 0.
    """
    a, b, n_fitted = calibration_line(batch.mean, batch.counts, batch.prior, slope=slope, intercept=intercept)
    centre = np.clip(a + b * batch.prior, 0.0, 1.0)
    return _shrink_to_centre(batch, centre, n_fitted, tau2, "v05_eb_reg", report_weight=True)


@register("js_loo", min_group_size=2)
def js_loo(batch: Batch) -> KernelOut:
    """Leave-one-out James-Stein baseline: b_ij = r_{-i} + w_i (u_ij - r_{-i}), u_ij RLOO's mean of the
    other rollouts, r_{-i} the other prompts' mean reward.

    From the other prompts only: noise2 = mean of s2_h / k_h, spread2 = max(0, var(v_h) - noise2) (ddof 1),
    w_i = spread2 / (spread2 + noise2) (1 - lambda_i in the paper's notation). RLOO exactly below 3 prompts.
    """
    k = batch.counts
    u = (batch.total[batch.inv] - batch.y) / (k[batch.inv] - 1)
    n_groups = batch.n_groups
    if n_groups < JS_MIN_GROUPS:
        return KernelOut(u)
    noise_g = batch.sum_sq_dev / (k - 1) / k
    noise = (noise_g.sum() - noise_g) / (n_groups - 1)
    # variance of the other groups' means from leave-one-out sums, centred first so that nothing cancels
    dev = batch.mean - batch.mean.mean()
    s1, s2 = dev.sum() - dev, (dev * dev).sum() - dev * dev
    spread = np.maximum(0.0, (s2 - s1 * s1 / (n_groups - 1)) / (n_groups - 2) - noise)
    rest = (batch.total.sum() - batch.total) / (len(batch.y) - k)
    w = bayes_weight(spread, noise)
    return KernelOut(fuse(u, rest[batch.inv], w[batch.inv]))


def _line_without_each_group(batch: Batch, slope: float | None, intercept: float | None, tau2: float | None):
    """Per left-out group g: the centre m_g of the line fitted without g, and tau2, sigma2 fitted on the other
    groups about that line (``through`` where the line passes through every other group mean)."""
    n_groups = batch.n_groups
    centre, tau2_g, sigma2_g = np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups)
    through = np.zeros(n_groups, dtype=bool)
    for g in range(n_groups):
        other = np.arange(n_groups) != g
        a, b, n_fitted = calibration_line(batch.mean[other], batch.counts[other], batch.prior[other],
                                          slope=slope, intercept=intercept)
        line = np.clip(a + b * batch.prior, 0.0, 1.0)
        centre[g] = line[g]
        if n_groups - 1 <= n_fitted:
            through[g] = True
            continue
        d2, s2_g, informative = eb_gauss_terms(batch, line, residual_inflation(n_groups - 1, n_fitted))
        if tau2 is None and informative[other].sum() <= 0:
            raise UndefinedError(
                f"v05_eb_reg_loo fits tau2 without each group's own rollouts, and without group {batch.label(g)!r} "
                "no group has >= 2 rollouts; pass tau2= or use v05_eb_reg"
            )
        fit = _tau2_sigma2(d2[other].sum(), s2_g[other].sum(), informative[other].sum(), tau2, "the batch")
        tau2_g[g], sigma2_g[g] = fit
    return centre, tau2_g, sigma2_g, through


@register("v05_eb_reg_loo", uses_prior=True, options={"slope": SLOPE, "intercept": INTERCEPT, "tau2": TAU2})
def v05_eb_reg_loo(batch: Batch, *, slope: float | None = None, intercept: float | None = None,
                   tau2: float | None = None) -> KernelOut:
    """Leave-one-out ``v05_eb_reg``: the mean of the other k-1 rollouts, shrunk toward the line fitted without
    the own group, with tau2 and sigma2 fitted without it, so b_i never sees r_i.

    ``slope=1, intercept=0`` is ``v05_eb_loo`` exactly. A lone rollout's baseline is its centre (w = 0). A
    line to fit needs another group (a one-group batch raises unless both are given).
    """
    v, k = _loo_means(batch)
    if slope is not None and intercept is not None:  # a fixed line: v05_eb_loo's arithmetic about it
        centre = np.clip(intercept + slope * batch.prior, 0.0, 1.0)
        tau2_g, sigma2_g = loo_tau2_sigma2(batch, tau2, "v05_eb_reg_loo", "v05_eb_reg", centre)
        through = np.zeros(batch.n_groups, dtype=bool)
    elif batch.n_groups < 2:
        raise UndefinedError("v05_eb_reg_loo fits the line without each group, and this batch has one group; "
                             "pass slope= and intercept=, or use v05_eb_reg")
    else:
        centre, tau2_g, sigma2_g, through = _line_without_each_group(batch, slope, intercept, tau2)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = sigma2_g[batch.inv] / k
    w = np.where(k > 0, np.where(through[batch.inv], 1.0, bayes_weight(tau2_g[batch.inv], s2)), 0.0)
    w = np.clip(w, 0.0, 1.0)
    return KernelOut(fuse(v, centre[batch.inv], w), weight=w)
