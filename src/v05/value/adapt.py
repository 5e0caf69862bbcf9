"""In-context correction of the meta-trained text prior: the value model adapts to a new domain.

The meta-trained map ``f(x)`` says how hard a prompt is from its text, as learned on the training domains;
on another domain it can be off. The policy's context shows by how much: its residuals, on the logit scale,
against the cold prediction ``a - f(x)``. A Bayesian linear model of those residuals on the prompt features,

    t_i = [1, f_i, x_i] . beta + e_i,   e_i ~ N(0, b_i + s2 + tau2),   beta ~ N(0, diag(INTERCEPT_VAR, F_SCALE_VAR, sigma2 I)),

with ``t_i = (y_i - q_i) / (q_i (1 - q_i))`` the working response of one Newton step from the prior fit
(``q_i = sigmoid(a - f_i)``) and ``b_i = 1 / (n_i q_i (1 - q_i))`` its binomial noise, is fitted in closed
form. Its strength ``sigma2`` is chosen per context by the marginal likelihood (type-II maximum likelihood)
on a fixed grid, so the data decide: a small context, or a domain where ``f`` already fits, keeps ``sigma2``
near 0 and the meta-trained prior; a large context from a domain where ``f`` is poor moves towards an
in-context ridge regression. The corrected prior of a prompt is ``f - shift`` with variance ``tau2 + Var
shift``: only the mean is re-estimated in context. (Re-estimating the residual variance too, through this
linearisation, was tried first and under-estimates it when pass rates saturate at 0 or 1: 1-sigma
coverage 0.50-0.55 instead of 0.68 in an inner cross-validation on training policies; docs/value.md.) The grid and prior
variances below were fixed before any evaluation; nothing here is fitted to test data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit

SIGMA2_GRID = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
"""Prior variance of each standardised feature's correction weight (0: no correction)."""
INTERCEPT_VAR = 100.0
"""Nearly flat prior on the correction's intercept."""
F_SCALE_VAR = 1.0
"""Prior variance of the correction's weight on ``f`` itself: lets the context rescale the meta map."""


@dataclass(frozen=True)
class TextCorrection:
    """Posterior of the correction weights: ``mean`` (n_features + 2,) and ``cov`` (same, squared); ``sigma2``
    is the chosen strength."""

    mean: np.ndarray
    cov: np.ndarray
    sigma2: float

    def __call__(self, f: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logit shift of the pass rate and its variance, each (n,), for text prior ``f`` (n,) and features ``x`` (n, d)."""
        z = design(f, x)  # (n, p)
        return z @ self.mean, np.sum((z @ self.cov) * z, axis=1)


def design(f: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Regressors ``[1, f, x]`` of shape (n, d + 2)."""
    return np.hstack([np.ones((len(f), 1)), np.asarray(f, np.float64)[:, None], np.asarray(x, np.float64)])


def fit_correction(offset, f, x, pass_rate, n_samples, *, tau2: float, s2: float, refine: int = 2) -> TextCorrection:
    """Fit the correction on one policy's context rows.

    The hyper-parameters are chosen on the linearisation at the prior; the weights are then refined by
    ``refine`` more iteratively reweighted steps at those hyper-parameters (the prior can be far off).

    Parameters
    ----------
    offset : ndarray of shape (n,)
        Logit of the prior prediction of each context row, ``a - f``.
    f : ndarray of shape (n,)
        Meta-trained text difficulty of each context prompt.
    x : ndarray of shape (n, d)
        Standardised features of each context prompt.
    pass_rate, n_samples : ndarray of shape (n,)
    tau2, s2 : float
        The model's text-prior and interaction variances.
    """
    z = design(f, x)  # (n, p)
    t, info = _working_response(offset, np.zeros(len(z)), pass_rate, n_samples)
    prec = 1.0 / (1.0 / info + s2 + tau2)  # (n,) noise precision
    gram, g = z.T @ (prec[:, None] * z), z.T @ (prec * t)  # (p, p), (p,)
    best = None
    for sigma2 in SIGMA2_GRID:  # the constant part of the log-likelihood is the same for every sigma2
        mean, chol, logdet = _posterior(gram, g, _prior_var(z.shape[1], sigma2))
        loglik = -0.5 * logdet + 0.5 * g @ mean
        if best is None or loglik > best[0]:
            best = (loglik, sigma2, mean, chol)
    _, sigma2, mean, chol = best
    for _ in range(refine):
        t, info = _working_response(offset, z @ mean, pass_rate, n_samples)
        prec = 1.0 / (1.0 / info + s2 + tau2)
        mean, chol, _ = _posterior(z.T @ (prec[:, None] * z), z.T @ (prec * t), _prior_var(z.shape[1], sigma2))
    keep = _prior_var(z.shape[1], sigma2) > 0
    cov = np.zeros((len(mean), len(mean)))
    cov[np.ix_(keep, keep)] = cho_solve(chol, np.eye(int(keep.sum())))
    return TextCorrection(mean=mean, cov=cov, sigma2=float(sigma2))


def _working_response(offset, shift, pass_rate, n_samples):
    """Working response ``shift + (y - q) / (q (1 - q))`` at ``q = sigmoid(offset + shift)``, and the binomial
    information ``n q (1 - q)`` of each row."""
    q = np.clip(expit(offset + shift), 1e-4, 1 - 1e-4)
    return shift + (pass_rate - q) / (q * (1 - q)), n_samples * q * (1 - q)


def _prior_var(p: int, sigma2: float) -> np.ndarray:
    out = np.full(p, sigma2)
    out[:2] = INTERCEPT_VAR, F_SCALE_VAR
    return out


def _posterior(gram, g, prior_var):
    """Posterior mean of the weights (0 where the prior variance is 0), the Cholesky factor of the posterior
    precision of the free weights, and ``log det(prior cov) + log det(posterior precision)`` over them."""
    keep = prior_var > 0
    chol = cho_factor(gram[np.ix_(keep, keep)] + np.diag(1.0 / prior_var[keep]))
    mean = np.zeros(len(g))
    mean[keep] = cho_solve(chol, g[keep])
    logdet = 2 * np.sum(np.log(np.diag(chol[0]))) + np.sum(np.log(prior_var[keep]))
    return mean, chol, logdet
