"""In-context correction of the text prior with surface features, its strength and the residual variance chosen
by leave-one-out on the context (``ValueModel(correction="surface")``).

The correction of :mod:`v05.value.adapt` reads only the embedding, caps its strength at a small value and keeps
the training domain's variance ``tau2``. This one differs in three ways, each decided by the policy's context:

* **features**: the logit residuals against the cold prediction ``a - f`` are regressed on
  ``z_i = [1, f_i, s_i, x_i]``, where ``s_i`` are the prompt's surface features
  (:func:`v05.value.surface.surface_features`, standardised over the context) and ``x_i`` its standardised
  embedding; priors ``N(0, INTERCEPT_VAR)``, ``N(0, F_SCALE_VAR)``, ``N(0, SURFACE_VAR)`` per surface feature and
  ``N(0, embed_var)`` per embedding feature;
* **strength**: the candidate corrections (none; and with or without the surface block, for every ``embed_var``
  of ``EMBED_VAR_GRID``, 0 included) are compared by their leave-one-out predictive log-likelihood of the
  context's outcomes (binomial, under the logit-normal predictive), as the ridge rival chooses its strength by
  leave-one-out; the weighted ridge on the working response gives every left-out mean and variance in closed form
  from one eigendecomposition of the embedding block;
* **variance**: the text prior's variance ``tau2`` is re-estimated on ``TAU2_GRID`` by the same leave-one-out
  likelihood, so the predictive variance of a cold prompt is the error this context shows, not the training
  domain's (the cold predictions are calibrated where ``tau2`` was too large).

Order: ``tau2`` is first chosen for the uncorrected prior, the candidate is then chosen with it, and ``tau2``
again for the chosen candidate; the chosen weights are refined by ``refine`` reweighted steps. Every likelihood
of the comparison profiles one common logit shift (by Newton steps): at prediction time the policy's ability
is re-fitted under the corrected prior, so a candidate is not judged on an overall level it would not keep
(the one-step fit, linearised at the latent median, moves the level of a skewed 0/1 context by itself).

Rule for tiny contexts: with fewer than ``MIN_CONTEXT`` rows nothing is fitted (:func:`fit_loo_correction`
returns None) and the model predicts exactly as without the correction. The grids and prior variances were fixed
before any evaluation (docs/value.md, "Cold prior with surface features").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh
from scipy.special import log_expit, logsumexp

from v05.value.adapt import F_SCALE_VAR, INTERCEPT_VAR, _posterior, _working_response

EMBED_VAR_GRID = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
"""Prior variance of each standardised embedding feature's weight (0: the embedding is not used)."""
SURFACE_VAR = 1.0
"""Prior variance of each in-context standardised surface feature's weight (when the surface block is used)."""
TAU2_GRID = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
"""Candidate variances of the text prior's error (logit scale), re-estimated in context."""
MIN_CONTEXT = 20
"""Contexts with fewer rows are not corrected at all (the meta-trained prior, exactly)."""
PROFILE_STEPS = 3
"""Newton steps of the common logit shift profiled in every leave-one-out likelihood."""

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(16)
_GH_LOGW = np.log(_GH_W / _GH_W.sum())


@dataclass(frozen=True)
class LooCorrection:
    """The chosen correction: weights ``mean`` over ``[1, f, s, x]`` and their covariance ``cov`` (zero where a
    block is unused), the context's standardisation of the surface features, and the re-estimated ``tau2``."""

    mean: np.ndarray
    cov: np.ndarray
    surface_center: np.ndarray
    surface_scale: np.ndarray
    use_surface: bool
    embed_var: float
    tau2: float

    def __call__(self, f: np.ndarray, x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logit shift of the pass rate and its variance, each (n,), for text prior ``f`` (n,), standardised
        embedding features ``x`` (n, d) and raw surface features ``s`` (n, k)."""
        z = design(f, x, (s - self.surface_center) / self.surface_scale)
        return z @ self.mean, np.sum((z @ self.cov) * z, axis=1)


def design(f: np.ndarray, x: np.ndarray, s_std: np.ndarray) -> np.ndarray:
    """Regressors ``[1, f, s, x]`` of shape (n, 2 + k + d)."""
    return np.hstack([np.ones((len(f), 1)), np.asarray(f, np.float64)[:, None], s_std, np.asarray(x, np.float64)])


def fit_loo_correction(offset, f, x, s, pass_rate, n_samples, *, s2: float, a_var: float = 0.0,
                       refine: int = 2) -> LooCorrection | None:
    """Choose and fit the correction on one policy's context rows (None below ``MIN_CONTEXT`` rows).

    Parameters
    ----------
    offset : ndarray of shape (n,)
        Logit of the uncorrected cold prediction of each context row, ``a - f``.
    f : ndarray of shape (n,)
        Meta-trained text difficulty of each context prompt.
    x : ndarray of shape (n, d)
        Standardised embedding features of each context prompt.
    s : ndarray of shape (n, k)
        Raw surface features of each context prompt.
    pass_rate, n_samples : ndarray of shape (n,)
    s2 : float
        The model's policy-by-prompt interaction variance.
    a_var : float
        Posterior variance of the policy's ability (part of every row's predictive variance).
    """
    n = len(offset)
    if n < MIN_CONTEXT:
        return None
    center, sd = s.mean(axis=0), s.std(axis=0)
    scale = np.where(sd > 1e-9, sd, np.inf)  # a feature constant over the context is left out (column of 0)
    s_std = (s - center) / scale
    k, d = s.shape[1], x.shape[1]
    base = s2 + a_var
    none = (np.zeros(n), np.zeros(n))
    tau2 = _best_tau2(offset, *none, pass_rate, n_samples, base)
    t, info = _working_response(offset, np.zeros(n), pass_rate, n_samples)
    w = 1.0 / (1.0 / info + s2 + tau2)
    candidates = {(False, 0.0, True): none}  # (surface, embed_var, no correction at all)
    candidates.update(_loo_candidates(t, w, f, s_std[:, np.isfinite(scale)], x))
    score = {key: _loglik(offset + m, base + tau2 + v, pass_rate, n_samples) for key, (m, v) in candidates.items()}
    use_surface, embed_var, off = max(score, key=score.get)
    tau2 = _best_tau2(offset, *candidates[(use_surface, embed_var, off)], pass_rate, n_samples, base)
    p = 2 + k + d
    if off:
        mean, cov = np.zeros(p), np.zeros((p, p))
    else:
        z = design(f, x, s_std)
        prior_var = np.r_[INTERCEPT_VAR, F_SCALE_VAR, np.full(k, SURFACE_VAR if use_surface else 0.0),
                          np.full(d, embed_var)]
        mean = np.zeros(p)
        for _ in range(refine + 1):
            t, info = _working_response(offset, z @ mean, pass_rate, n_samples)
            prec = 1.0 / (1.0 / info + s2 + tau2)
            mean, chol, _ = _posterior(z.T @ (prec[:, None] * z), z.T @ (prec * t), prior_var)
        keep = prior_var > 0
        cov = np.zeros((p, p))
        cov[np.ix_(keep, keep)] = cho_solve(chol, np.eye(int(keep.sum())))
    return LooCorrection(mean=mean, cov=cov, surface_center=center, surface_scale=scale, use_surface=bool(use_surface),
                         embed_var=float(embed_var), tau2=float(tau2))


def _loo_candidates(t, w, f, s_std, x) -> dict:
    """Leave-one-out mean and variance of the logit shift of every context row, for every candidate
    ``(surface used, embed_var, False)``, of the weighted ridge ``argmin sum w (t - z b)^2 + b' P^-1 b``.

    With ``c_i = z_i' A^-1 z_i`` and ``h_i = w_i c_i`` (``A`` the posterior precision), the left-out mean is
    ``(fit_i - h_i t_i) / (1 - h_i)`` and the left-out variance ``c_i / (1 - h_i)``. The embedding block is
    rotated once to the eigenvectors of ``x' W x``, so each ``embed_var`` costs a small Schur complement."""
    n = len(t)
    d, q = eigh(x.T @ (w[:, None] * x))
    d = np.clip(d, 0.0, None)
    e = x @ q  # (n, d) rotated embedding
    e2, g_e = e * e, e.T @ (w * t)
    blocks = {False: np.c_[np.ones(n), f]}
    if s_std.shape[1]:
        blocks[True] = np.c_[np.ones(n), f, s_std]
    out = {}
    for use_surface, u in blocks.items():
        prior = np.r_[INTERCEPT_VAR, F_SCALE_VAR, np.full(u.shape[1] - 2, SURFACE_VAR)]
        g_uu = u.T @ (w[:, None] * u) + np.diag(1.0 / prior)
        b, g_u = u.T @ (w[:, None] * e), u.T @ (w * t)  # (k, d), (k,)
        for embed_var in EMBED_VAR_GRID:
            if embed_var == 0:
                chol = cho_factor(g_uu)
                fit = u @ cho_solve(chol, g_u)
                c = np.sum(u * cho_solve(chol, u.T).T, axis=1)
            else:
                r = 1.0 / (d + 1.0 / embed_var)  # (d,)
                chol = cho_factor(g_uu - (b * r) @ b.T)
                beta_u = cho_solve(chol, g_u - b @ (r * g_e))
                fit = u @ beta_u + e @ (r * (g_e - b.T @ beta_u))
                v = u - (e * r) @ b.T  # (n, k)
                c = e2 @ r + np.sum(v * cho_solve(chol, v.T).T, axis=1)
            h = np.minimum(w * c, 1.0 - 1e-9)
            out[(use_surface, embed_var, False)] = ((fit - h * t) / (1.0 - h), c / (1.0 - h))
    return out


def _best_tau2(offset, shift, shift_var, pass_rate, n_samples, base) -> float:
    """The ``TAU2_GRID`` value of highest log-likelihood of the rows under logit ``N(offset + shift, base +
    shift_var + tau2)`` (the first one on ties)."""
    scores = [_loglik(offset + shift, base + shift_var + tau2, pass_rate, n_samples) for tau2 in TAU2_GRID]
    return float(TAU2_GRID[int(np.argmax(scores))])


def _loglik(mean, var, pass_rate, n_samples, *, steps: int = PROFILE_STEPS) -> float:
    """``max over c`` of the sum over rows of ``log E[q^k (1 - q)^(n - k)]``, ``logit q ~ N(mean + c, var)``,
    ``k = n * pass_rate`` (16-point Gauss-Hermite; the binomial coefficient, the same for every candidate, is
    left out). The common shift ``c`` (the ability's re-fit) takes ``steps`` Newton steps from 0, each at most
    1 in size; ``steps=0`` keeps ``c = 0``."""
    eta0 = mean[:, None] + np.sqrt(var)[:, None] * _GH_X  # (n, 16)
    k, n = (pass_rate * n_samples)[:, None], n_samples[:, None]
    c = 0.0
    for step in range(steps + 1):
        eta = eta0 + c
        ll = k * log_expit(eta) + (n - k) * log_expit(-eta) + _GH_LOGW
        row = logsumexp(ll, axis=1)
        if step == steps:
            return float(np.sum(row))
        post = np.exp(ll - row[:, None])  # weight of each node given the row
        q = np.exp(log_expit(eta))
        g = k - n * q  # d ll / d c at each node
        grad = np.sum(post * g)
        hess = np.sum(post * (g * g - n * q * (1 - q))) - np.sum(np.sum(post * g, axis=1) ** 2)
        c += float(np.clip(-grad / hess if hess < 0 else np.sign(grad), -1.0, 1.0))
