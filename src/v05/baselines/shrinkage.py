"""The shrinkage formulas behind every prior fusion and the OSLA budget, in one place (pure numpy).

A prior pass rate V with squared error D2 and a k-rollout mean v with sampling variance s2 fuse into
b = V + w (v - V). Everything here is on the unit scale (rewards mapped to [0, 1]); ``docs/method.md``
section 3.1 ("Shrinkage formulas") lists each formula, sections 3.2-3.6 and 4 say where it is used. The estimators
(:mod:`v05.baselines.fused`) turn these into baselines; the budget (:mod:`v05.budget`) turns them into the
expected value of one more rollout.
"""

from __future__ import annotations

import numpy as np

VARIANCES = ("worst", "bernoulli")
"""Sampling-variance models of a k-rollout mean: the worst case 1/(4k), or the Bernoulli plug-in."""
EB_VARIANCE_CLIP = 0.02
"""Priors are clipped to [0.02, 0.98] where they set a Bernoulli variance V(1-V) (the Beta-Binomial fit)."""


def fuse(v, prior, w):
    """b = V + w (v - V); exactly v for w = 1, exactly V for w = 0 or v = V."""
    return np.where(w == 1.0, v, prior + w * (v - prior))


def worst_case_var(k):
    """Worst-case variance of a k-rollout mean on the unit scale: 1/(4k) (infinite for k = 0)."""
    with np.errstate(divide="ignore"):
        return 0.25 / np.asarray(k, dtype=np.float64)


def bernoulli_var(v, k):
    """Plug-in variance p(1-p)/k of a k-rollout mean, with p = (k v + 1/2)/(k + 1) (Jeffreys-smoothed, so an
    all-equal group does not claim zero noise)."""
    k = np.asarray(k, dtype=np.float64)
    p = (k * v + 0.5) / (k + 1.0)
    with np.errstate(divide="ignore"):
        return p * (1.0 - p) / k


def sampling_var(v, k, variance: str):
    """Variance of a k-rollout mean under the named model (see :data:`VARIANCES`)."""
    return worst_case_var(k) if variance == "worst" else bernoulli_var(v, k)


def shrinkage_weight(d2, s2):
    """Positive-part James-Stein weight on the mean: max(0, 1 - s2 / d2); 0 when d2 <= s2 (prior kept).

    With d2 = (v - V)^2 this is the paper's deviation test (``docs/method.md`` 3.2, "Paper form")."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(d2 > s2, 1.0 - s2 / d2, 0.0)


def bayes_weight(d2_prior, s2):
    """MSE-optimal weight D2 / (D2 + s2) for a prior with squared error D2 and a mean with variance s2.

    1 where D2 is infinite or both are 0 (nothing to choose); 0 where s2 is infinite (no rollouts)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(d2_prior + s2 > 0, d2_prior / (d2_prior + s2), 1.0)
    return np.where(np.isinf(d2_prior), 1.0, np.where(np.isinf(s2), 0.0, w))


def fused_mse(d2, s2):
    """MSE of the optimally weighted fusion of a prior with squared error d2 and a mean with variance s2:
    d2 s2 / (d2 + s2) (0 when both are 0)."""
    with np.errstate(invalid="ignore"):
        return np.where(d2 + s2 > 0, d2 * s2 / (d2 + s2), 0.0)


def prior_error(v, k, prior, prior_var=None, variance: str = "worst"):
    """Plug-in squared error of the prior, D2 = max(0, (v - V)^2 - s2_k), floored at ``prior_var`` if given."""
    d2 = np.maximum(0.0, (v - prior) ** 2 - sampling_var(v, k, variance))
    return d2 if prior_var is None else np.maximum(d2, prior_var)


def estimated_mse(v, k, prior, *, prior_var=None, variance: str = "worst"):
    """OSLA's estimate of the fused baseline's MSE after k rollouts with mean v (unit scale)."""
    v, k, prior = np.asarray(v, float), np.asarray(k, float), np.asarray(prior, float)
    return fused_mse(prior_error(v, k, prior, prior_var, variance), sampling_var(v, k, variance))


def expected_gain(v, k, prior, *, prior_var=None, variance: str = "worst", k_next=None):
    """Expected MSE reduction (unit scale) of one more rollout, MSE(k') - MSE(k'+1), with the prior's squared
    error D2 estimated at k and held fixed; k' = ``k_next`` (default k) lets a caller look further ahead."""
    v, k, prior = np.asarray(v, float), np.asarray(k, float), np.asarray(prior, float)
    k_next = k if k_next is None else np.asarray(k_next, float)
    d2 = prior_error(v, k, prior, prior_var, variance)
    return fused_mse(d2, sampling_var(v, k_next, variance)) - fused_mse(d2, sampling_var(v, k_next + 1, variance))


def eb_weight(k, rho):
    """Beta-Binomial posterior weight k rho / (k rho + 1 - rho); 0 for k = 0 and exactly 1 for rho = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, k * rho / (k * rho + 1.0 - rho), 0.0)


def eb_moments(mean, k, prior):
    """Per-group terms of the moment equation for rho: (d2 - a/k, a (1 - 1/k)), zero for single rollouts.

    Summed over groups, num / den estimates rho. Groups of one rollout are left out: for them
    E[d2] = a whatever rho is, so they carry no information about the prior, only noise.
    """
    v_prior = np.clip(prior, EB_VARIANCE_CLIP, 1.0 - EB_VARIANCE_CLIP)
    a = v_prior * (1.0 - v_prior)
    informative = k >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        num = np.where(informative, (mean - prior) ** 2 - a / k, 0.0)
        den = np.where(informative, a * (1.0 - 1.0 / k), 0.0)
    return num, den


def fit_rho(mean, k, prior) -> float | None:
    """Method-of-moments estimate of rho in [0, 1] from per-group means, counts and priors (unit scale);
    None when no group has >= 2 rollouts (rho is then not identifiable)."""
    num, den = eb_moments(np.asarray(mean, float), np.asarray(k), np.asarray(prior, float))
    if den.sum() <= 0:
        return None
    return float(np.clip(num.sum() / den.sum(), 0.0, 1.0))


def eb_gain(mean, k, prior, rho: float):
    """Expected posterior-variance reduction (unit scale) of one more rollout under the Beta prior of
    strength m = 1/rho - 1 centred on the prior (plus Jeffreys' half counts): p(1-p)/(n+1)^2, n = m + k + 1."""
    mean, k, prior = np.asarray(mean, float), np.asarray(k, float), np.asarray(prior, float)
    if rho <= 0.0:
        return np.zeros(np.broadcast(mean, k, prior).shape)
    m = 1.0 / rho - 1.0
    n = m + k + 1.0
    p = (m * prior + k * mean + 0.5) / n
    return p * (1.0 - p) / (n + 1.0) ** 2


# -- two-component scale mixture of the prior's error (``v05_eb_mix``, docs/method.md 3.7) ---------------

MIX_STEPS = 100
"""EM steps of the mixture fit: a fixed number, so that the fit is a deterministic function of the batch."""
MIX_INIT_PI = 0.1
"""The EM's starting share of the large-error component (hallucinated priors are expected to be few)."""


def mixture_responsibility(d2, s2, pi: float, tau2_small: float, tau2_big: float):
    """P(a prompt's prior is in the large-error component | its squared deviation d2 = (v - V)^2).

    d = v - V ~ (1 - pi) N(0, tau2_small + s2) + pi N(0, tau2_big + s2), s2 the sampling variance of v
    (> 0). Exactly 0 for pi = 0 and exactly 1 for pi = 1.
    """
    d2, s2 = np.asarray(d2, float), np.asarray(s2, float)
    if pi <= 0.0 or pi >= 1.0:
        return np.full(np.broadcast(d2, s2).shape, 0.0 if pi <= 0.0 else 1.0)
    var_small, var_big = tau2_small + s2, tau2_big + s2
    log_small = np.log1p(-pi) - 0.5 * (np.log(var_small) + d2 / var_small)
    log_big = np.log(pi) - 0.5 * (np.log(var_big) + d2 / var_big)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(log_small - log_big))


def mixture_weight(d2, s2, pi: float, tau2_small: float, tau2_big: float):
    """Posterior-mean weight on v under the scale mixture: (1 - r) w_small + r w_big, with r the
    responsibility and w_c = tau2_c / (tau2_c + s2) each component's normal-normal weight."""
    r = mixture_responsibility(d2, s2, pi, tau2_small, tau2_big)
    return (1.0 - r) * bayes_weight(tau2_small, s2) + r * bayes_weight(tau2_big, s2)


def fit_mixture(d2, s2, *, pi: float | None, tau2_small: float | None, tau2_big: float | None,
                init_small: float, init_big: float, steps: int = MIX_STEPS) -> tuple[float, float, float]:
    """Maximum-likelihood (pi, tau2_small, tau2_big) by ``steps`` EM steps; a given value is held fixed.

    Parameters
    ----------
    d2, s2 : ndarray of shape (n_groups,)
        Squared deviations (v - V)^2 of the fitted groups and the sampling variances of their means (> 0).
    pi, tau2_small, tau2_big : float or None
        Fixed values, or None to fit (fixed variances must satisfy tau2_small <= tau2_big).
    init_small, init_big : float
        Starting variances of the fitted components, init_small <= init_big (pi starts at ``MIX_INIT_PI``).

    Notes
    -----
    The latent variables are each prompt's component and its error delta = mu - V. E-step: the
    responsibility r and, per component c, E[delta^2 | d, c] = w_c^2 d2 + w_c s2 (w_c = tau2_c/(tau2_c + s2)).
    M-step: pi = mean r; tau2_c = B_c / A_c, the responsibility-weighted mean of E[delta^2 | d, c]
    (A_c = sum of the weights; a component with A_c = 0 keeps its value). The large-error component stays
    the larger (tau2_small <= tau2_big), by the constrained M-step: fitted variances that cross swap with
    pi -> 1 - pi when pi is fitted (the same likelihood) and pool to (B_s + B_b)/(A_s + A_b) when it is
    fixed; a fitted variance that crosses a fixed one takes its value.
    """
    p = MIX_INIT_PI if pi is None else pi
    small = init_small if tau2_small is None else tau2_small
    big = init_big if tau2_big is None else tau2_big
    for _ in range(steps):
        r = mixture_responsibility(d2, s2, p, small, big)
        w_small, w_big = bayes_weight(small, s2), bayes_weight(big, s2)
        a_small, a_big = float((1.0 - r).sum()), float(r.sum())
        b_small = float(((1.0 - r) * (w_small * w_small * d2 + w_small * s2)).sum())
        b_big = float((r * (w_big * w_big * d2 + w_big * s2)).sum())
        if pi is None:
            p = float(r.mean())
        if tau2_small is None and a_small > 0:
            small = b_small / a_small
        if tau2_big is None and a_big > 0:
            big = b_big / a_big
        if big < small:
            if tau2_small is None and tau2_big is None:
                if pi is None:
                    small, big, p = big, small, 1.0 - p
                else:
                    small = big = (b_small + b_big) / (a_small + a_big)
            elif tau2_small is None:
                small = big
            else:
                big = small
    return p, small, big


# -- batch-calibrated centres (``eb_batch``, ``v05_eb_reg``; docs/method.md 3.11) ------------------------


SLOPE_MIN_SPREAD = 1e-9
"""Priors that spread by no more than this (max - min) count as equal: the calibration line's slope is then
not identifiable and is set to 0."""


def calibration_line(mean, k, prior, *, slope: float | None = None,
                     intercept: float | None = None) -> tuple[float, float, int]:
    """Weighted least-squares line of the group means on the prior, weights = rollouts per group.

    Returns (intercept, slope, n_fitted): a given value is kept, the others fitted; n_fitted counts the fitted
    ones. Where the slope is not identifiable (the priors spread by at most ``SLOPE_MIN_SPREAD``, or are all
    within it of 0 through a given intercept) it is 0 and not counted: the line is then the weighted mean of
    the group means. With slope 0 the fitted intercept is sum(k v) / sum(k), the batch's mean reward, exactly.
    """
    mean, prior, k = np.asarray(mean, float), np.asarray(prior, float), np.asarray(k, float)
    n = k.sum()
    fitted = 0
    if slope is None:
        if intercept is None and np.ptp(prior) > SLOPE_MIN_SPREAD:
            x_bar, y_bar = (k * prior).sum() / n, (k * mean).sum() / n
            slope = float((k * (prior - x_bar) * (mean - y_bar)).sum() / (k * (prior - x_bar) ** 2).sum())
            fitted += 1
        elif intercept is not None and np.abs(prior).max() > SLOPE_MIN_SPREAD:
            slope = float((k * prior * (mean - intercept)).sum() / (k * prior * prior).sum())
            fitted += 1
        else:
            slope = 0.0
    if intercept is None:
        intercept = float((k * (mean - slope * prior)).sum() / n)
        fitted += 1
    return float(intercept), float(slope), fitted


def residual_inflation(n_groups: int, n_fitted: int) -> float:
    """n / (n - p): squared residuals about a line with p fitted parameters average (n - p)/n of the squared
    errors about the true line; 1.0 exactly when nothing is fitted."""
    return 1.0 if n_fitted == 0 else n_groups / (n_groups - n_fitted)
