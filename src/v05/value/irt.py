"""Item-response (Rasch) arithmetic of the in-context head, in numpy and scipy.

A policy ``j`` with ability ``a_j`` passes prompt ``i`` of difficulty ``d_i`` with probability
``sigmoid(a_j - d_i + u_ij)``, where ``u_ij ~ N(0, s2)`` is a policy-by-prompt interaction. A prompt's
difficulty has the prior ``N(m_i, tau2)`` (``m_i`` from its text); every observed (policy, prompt, pass rate)
row adds evidence through a binomial likelihood whose weight ``n / (1 + n q (1 - q) s2)`` caps what one row
can say about ``d_i`` (many samples of *one* policy do not pin down how hard the prompt is for another).
Abilities and difficulties are fitted jointly by alternating one-dimensional Newton steps; the posterior
variance of each difficulty is the inverse curvature (Laplace), so it is ``tau2`` for a prompt with no
rows and shrinks as rows accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

ABILITY_PRIOR_VAR = 25.0
"""Weak N(0, 25) prior on abilities, so a policy whose rows are all 0 or all 1 keeps a finite ability."""

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(32)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class IRTFit:
    """Joint fit: abilities ``a`` (n_policies,) and difficulties ``d`` (n_prompts,) with Laplace variances."""

    a: np.ndarray
    a_var: np.ndarray
    d: np.ndarray
    d_var: np.ndarray


def row_weights(n: np.ndarray, q: np.ndarray, s2) -> np.ndarray:
    """Effective binomial count of each row: ``n / (1 + n q (1 - q) s2)``."""
    return n / (1.0 + n * q * (1.0 - q) * s2)


def fit_irt(
    policy: np.ndarray,
    prompt: np.ndarray,
    pass_rate: np.ndarray,
    n_samples: np.ndarray,
    d_prior: np.ndarray,
    n_policies: int,
    *,
    tau2,
    s2: float,
    n_iter: int = 6,
) -> IRTFit:
    """Fit abilities and difficulties to observed rows under the text prior ``N(d_prior, tau2)``.

    Parameters
    ----------
    policy, prompt : ndarray of int, shape (n_rows,)
        Row's policy index in ``[0, n_policies)`` and prompt index in ``[0, len(d_prior))``.
    pass_rate : ndarray of shape (n_rows,)
        Observed pass rates in [0, 1].
    n_samples : ndarray of shape (n_rows,)
        Rollouts behind each pass rate.
    d_prior : ndarray of shape (n_prompts,)
        Prior mean difficulty of every prompt (prompts without rows keep it, with variance ``tau2``).
    tau2 : float or ndarray of shape (n_prompts,)
        Prior variance of the difficulties (one for all, or one per prompt).
    """
    n_prompts = len(d_prior)
    d = d_prior.astype(np.float64).copy()
    a = np.zeros(n_policies)
    if len(policy):
        for _ in range(n_iter):
            for _ in range(2):
                q = expit(a[policy] - d[prompt])
                w = row_weights(n_samples, q, s2)
                grad = np.bincount(policy, w * (pass_rate - q), n_policies) - a / ABILITY_PRIOR_VAR
                curv = np.bincount(policy, w * q * (1 - q), n_policies) + 1.0 / ABILITY_PRIOR_VAR
                a += np.clip(grad / curv, -2.0, 2.0)
            for _ in range(2):
                q = expit(a[policy] - d[prompt])
                w = row_weights(n_samples, q, s2)
                grad = np.bincount(prompt, w * (q - pass_rate), n_prompts) - (d - d_prior) / tau2
                curv = np.bincount(prompt, w * q * (1 - q), n_prompts) + 1.0 / tau2
                d += np.clip(grad / curv, -2.0, 2.0)
    q = expit(a[policy] - d[prompt])
    w = row_weights(n_samples, q, s2)
    a_var = 1.0 / (np.bincount(policy, w * q * (1 - q), n_policies) + 1.0 / ABILITY_PRIOR_VAR)
    d_var = 1.0 / (np.bincount(prompt, w * q * (1 - q), n_prompts) + 1.0 / tau2)
    return IRTFit(a=a, a_var=a_var, d=d, d_var=d_var)


def logit_normal_moments(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``sigmoid(eta)`` for ``eta ~ N(mean, var)`` (32-point Gauss-Hermite)."""
    p = expit(mean[:, None] + np.sqrt(var)[:, None] * _GH_X[None, :])  # (n, 32)
    m = p @ _GH_W
    v = np.maximum((p * p) @ _GH_W - m * m, 1e-12)
    return m, v


def logit_normal_loglik(pass_rate, n_samples, mean, var) -> np.ndarray:
    """Per-row log marginal likelihood of observed pass rates under ``sigmoid(N(mean, var))``.

    Uses ``n (p log pi + (1 - p) log(1 - pi))`` (the binomial kernel, defined for fractional counts).
    """
    eta = mean[:, None] + np.sqrt(var)[:, None] * _GH_X[None, :]
    log_pi, log_1m = -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)
    ll = n_samples[:, None] * (pass_rate[:, None] * log_pi + (1 - pass_rate[:, None]) * log_1m)
    top = ll.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.exp(ll - top) @ _GH_W)



def stacked_shift(
    fit: IRTFit,
    policy: np.ndarray,
    prompt: np.ndarray,
    pass_rate: np.ndarray,
    n_samples: np.ndarray,
    targets: np.ndarray,
    *,
    prior_precision: float,
) -> np.ndarray:
    """Logit shift of each target from the other policies' residuals, weighted by similarity to policy 0.

    The Rasch fit explains a prompt by one difficulty shared by all policies. Policies that resemble the
    target (a sibling model, a recent checkpoint) also share its *residuals*. Each other policy's residual
    on a prompt, ``pass_rate - sigmoid(a_k - d_i)`` (0 where it has no row), is a feature; weights
    ``beta ~ N(0, 1 / prior_precision)`` are fitted on policy 0's rows (binomial likelihood, the Rasch
    logit as offset; L-BFGS), and the targets get ``features @ beta``. Zero when no other policy has a
    row on a prompt of policy 0, or when ``prior_precision`` is infinite.
    """
    n_policies = len(fit.a)
    other = policy > 0
    if n_policies < 2 or not other.any() or not np.isfinite(prior_precision):
        return np.zeros(len(targets))
    features = np.zeros((len(fit.d), n_policies - 1))  # (n_prompts, n_other_policies)
    features[prompt[other], policy[other] - 1] = pass_rate[other] - expit(fit.a[policy[other]] - fit.d[prompt[other]])
    own = ~other
    x, offset = features[prompt[own]], fit.a[0] - fit.d[prompt[own]]
    if not np.any(x):
        return np.zeros(len(targets))
    y, n = pass_rate[own], n_samples[own]

    def objective(beta):
        z = offset + x @ beta
        loss = np.sum(n * (np.logaddexp(0.0, z) - y * z)) + 0.5 * prior_precision * beta @ beta
        return loss, x.T @ (n * (expit(z) - y)) + prior_precision * beta

    beta = minimize(objective, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    return features[targets] @ beta
