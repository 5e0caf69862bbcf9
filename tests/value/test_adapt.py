"""The in-context correction of the text prior: a plain dense computation to match, and its behaviour."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from scipy.stats import multivariate_normal

from v05.value import adapt
from v05.value.adapt import design, fit_correction


def context(n, d, *, f_quality, seed=0, n_samples=10):
    """Context rows whose true logit is ``-(f_quality * f + x @ w)``: f right (1), useless (0) or inverted (-1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=d) * 0.6
    f = x @ rng.normal(size=d) * 0.5
    truth = -(f_quality * f + x @ w * (f_quality != 1))
    y = rng.binomial(n_samples, expit(truth)) / n_samples
    return f, x, y, np.full(n, float(n_samples))


def dense_loglik(t, z, noise, prior_var):
    """log N(t; 0, diag(noise) + Z diag(prior_var) Z^T), the n x n way."""
    return multivariate_normal(np.zeros(len(t)), np.diag(noise) + (z * prior_var) @ z.T).logpdf(t)


def test_hyper_parameters_and_posterior_match_the_dense_computation():
    f, x, y, n = context(40, 3, f_quality=0, seed=1)
    offset = -f + 0.2
    tau2, s2 = 2.0, 0.5
    got = fit_correction(offset, f, x, y, n, tau2=tau2, s2=s2, refine=0)
    q = np.clip(expit(offset), 1e-4, 1 - 1e-4)
    t, b = (y - q) / (q * (1 - q)), 1 / (n * q * (1 - q))
    z = design(f, x)
    best, best_ll = None, -np.inf
    for sigma2 in adapt.SIGMA2_GRID:
        prior_var = np.r_[adapt.INTERCEPT_VAR, adapt.F_SCALE_VAR, np.full(x.shape[1], sigma2)]
        ll = dense_loglik(t, z, b + s2 + tau2, prior_var)
        if ll > best_ll:
            best, best_ll = (sigma2, prior_var), ll
    sigma2, prior_var = best
    assert got.sigma2 == sigma2
    cov_t = np.diag(b + s2 + tau2) + (z * prior_var) @ z.T
    mean = prior_var * (z.T @ np.linalg.solve(cov_t, t))  # P Z^T (N + Z P Z^T)^-1 t
    cov = np.diag(prior_var) - (z * prior_var).T @ np.linalg.solve(cov_t, z * prior_var)
    keep = prior_var > 0
    np.testing.assert_allclose(got.mean, np.where(keep, mean, 0.0), atol=1e-8)
    np.testing.assert_allclose(got.cov[np.ix_(keep, keep)], cov[np.ix_(keep, keep)], atol=1e-8)
    shift, var = got(f, x)
    np.testing.assert_allclose(shift, z @ got.mean)
    np.testing.assert_allclose(var, np.einsum("ij,jk,ik->i", z, got.cov, z))


def test_a_right_prior_is_kept_and_a_wrong_one_is_corrected():
    f, x, y, n = context(400, 8, f_quality=1, seed=2)
    right = fit_correction(-f, f, x, y, n, tau2=2.0, s2=0.3)
    assert right.sigma2 <= 1e-3 and abs(right.mean[1]) < 0.3  # keeps f's scale, little else
    f, x, y, n = context(400, 8, f_quality=-1, seed=3)
    wrong = fit_correction(-f, f, x, y, n, tau2=2.0, s2=0.3)
    corrected = -f + wrong(f, x)[0]
    truth_rank = np.corrcoef(corrected, y)[0, 1]
    assert wrong.mean[1] > 1.0 and truth_rank > 0.5 > np.corrcoef(-f, y)[0, 1]


def test_a_small_context_moves_the_prior_less_and_less_surely_than_a_large_one():
    f, x, y, n = context(400, 40, f_quality=-1, seed=4)
    small = fit_correction(-f[:8], f[:8], x[:8], y[:8], n[:8], tau2=2.0, s2=0.3)
    large = fit_correction(-f, f, x, y, n, tau2=2.0, s2=0.3)
    new_f, new_x = f[300:], x[300:]  # shifts on the same prompts
    assert np.mean(np.abs(small(new_f, new_x)[0])) < np.mean(np.abs(large(new_f, new_x)[0]))
    assert np.mean(small(new_f, new_x)[1]) > np.mean(large(new_f, new_x)[1]) > 0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 6), seed=st.integers(0, 10_000),
       counts=st.sampled_from([1, 4, 10]), tau2=st.sampled_from([0.5, 8.0]))
def test_any_context_gives_a_finite_correction_and_positive_variance(n, d, seed, counts, tau2):
    rng = np.random.default_rng(seed)
    f, x = rng.normal(size=n) * 3, rng.normal(size=(n, d))
    y = rng.integers(0, counts + 1, n) / counts  # includes all-0 and all-1 contexts
    got = fit_correction(rng.normal(size=n) * 4, f, x, y, np.full(n, float(counts)), tau2=tau2, s2=1.0)
    shift, var = got(rng.normal(size=5), rng.normal(size=(5, d)))
    assert np.all(np.isfinite(shift)) and np.all(var >= 0)
    assert got.sigma2 in adapt.SIGMA2_GRID


@pytest.mark.parametrize("adapt_on", [True, False])
def test_the_value_model_uses_it_only_when_asked(fitted, table, adapt_on):
    import copy

    vm = copy.copy(fitted)
    vm.adapt = adapt_on
    rows = np.flatnonzero(table.policy == "pol2")
    args = (table.prompt[rows[:40]].tolist(), table.pass_rate[rows[:40]], table.prompt[rows[40:]].tolist())
    mean, var = vm.predict(*args)
    assert np.all((mean > 0) & (mean < 1) & (var > 0))
    other = copy.copy(fitted)
    other.adapt = not adapt_on
    assert not np.allclose(mean, other.predict(*args)[0])
