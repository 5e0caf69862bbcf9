"""The leave-one-out correction with surface features: a plain refit loop to match, and its behaviour."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import expit

from v05.value import adapt_loo
from v05.value.adapt import F_SCALE_VAR, INTERCEPT_VAR
from v05.value.adapt_loo import EMBED_VAR_GRID, MIN_CONTEXT, SURFACE_VAR, TAU2_GRID, fit_loo_correction


def context(n, d, k, *, seed=0, n_samples=10, surface_weight=1.5, noise=0.3):
    """Rows whose true logit is ``-f + surface_weight * s_0 + N(0, noise)``: the prior misses a surface feature."""
    rng = np.random.default_rng(seed)
    x, s = rng.normal(size=(n, d)), rng.normal(size=(n, k))
    f = x @ rng.normal(size=d) * 0.5
    truth = -f + surface_weight * s[:, 0] + rng.normal(size=n) * np.sqrt(noise)
    y = rng.binomial(n_samples, expit(truth)) / n_samples
    return f, x, s, y, np.full(n, float(n_samples))


def test_leave_one_out_means_and_variances_match_a_refit_loop():
    rng = np.random.default_rng(0)
    n, d, k = 25, 4, 2
    f, x, s = rng.normal(size=n), rng.normal(size=(n, d)), rng.normal(size=(n, k))
    t, w = rng.normal(size=n), rng.uniform(0.2, 1.0, n)
    got = adapt_loo._loo_candidates(t, w, f, s, x)
    assert set(got) == {(surf, ev, False) for surf in (False, True) for ev in EMBED_VAR_GRID}
    for (surf, ev, _), (loo_mean, loo_var) in got.items():
        z = np.c_[np.ones(n), f, s if surf else np.zeros((n, 0)), x if ev else np.zeros((n, 0))]
        prior = np.r_[INTERCEPT_VAR, F_SCALE_VAR, np.full(k if surf else 0, SURFACE_VAR), np.full(d if ev else 0, ev)]
        for i in range(n):
            keep = np.arange(n) != i
            a = z[keep].T @ (w[keep, None] * z[keep]) + np.diag(1 / prior)
            beta = np.linalg.solve(a, z[keep].T @ (w[keep] * t[keep]))
            assert loo_mean[i] == pytest.approx(z[i] @ beta, abs=1e-8)
            assert loo_var[i] == pytest.approx(z[i] @ np.linalg.solve(a, z[i]), abs=1e-8)


def test_the_likelihood_is_the_binomial_under_the_logit_normal():
    mean, var, p, n = np.array([0.3, -1.5]), np.array([0.5, 4.0]), np.array([0.7, 0.0]), np.array([10.0, 1.0])
    want = 0.0
    for m, v, pr, nn in zip(mean, var, p, n):
        k = pr * nn
        def integrand(u, k=k, nn=nn, m=m, v=v):
            return expit(u) ** k * expit(-u) ** (nn - k) * np.exp(-(u - m) ** 2 / (2 * v)) / np.sqrt(2 * np.pi * v)

        want += np.log(quad(integrand, -40, 40)[0])
    assert adapt_loo._loglik(mean, var, p, n, steps=0) == pytest.approx(want, rel=1e-4)


def test_the_likelihood_profiles_the_common_shift():
    rng = np.random.default_rng(5)
    mean, var = rng.normal(size=200), np.full(200, 2.0)
    y, n = rng.binomial(1, expit(mean + 0.8 + rng.normal(size=200))).astype(float), np.ones(200)
    grid = max(adapt_loo._loglik(mean + c, var, y, n, steps=0) for c in np.linspace(-1, 3, 401))
    assert adapt_loo._loglik(mean, var, y, n) == pytest.approx(grid, abs=1e-2)
    assert adapt_loo._loglik(mean, var, y, n) > adapt_loo._loglik(mean, var, y, n, steps=0) + 1


def test_a_missed_surface_feature_is_found_and_the_variance_follows_the_context():
    f, x, s, y, n = context(300, 6, 3, seed=1)
    got = fit_loo_correction(-f, f, x, s, y, n, s2=0.2)
    assert got.use_surface and got.mean[2] > 0.5  # the weight of s_0 (standardised) is found
    corrected = -f + got(f, x, s)[0]
    assert np.corrcoef(corrected, y)[0, 1] > np.corrcoef(-f, y)[0, 1] + 0.2
    assert got.tau2 <= 0.75  # residual variance 0.3 - s2 0.2 (+ what is left of the shift), not a default of 8
    f, x, s, y, n = context(300, 6, 3, seed=2, surface_weight=0.0, noise=6.0)
    noisy = fit_loo_correction(-f, f, x, s, y, n, s2=0.2)
    assert noisy.tau2 >= 3.0


def test_a_right_prior_is_left_alone():
    f, x, s, y, n = context(200, 6, 3, seed=3, surface_weight=0.0, noise=0.0)
    got = fit_loo_correction(-f, f, x, s, y, n, s2=0.2)
    shift = got(f, x, s)[0]
    assert np.max(np.abs(shift)) < 0.3 and not got.use_surface and got.embed_var <= 1e-3


def test_a_tiny_context_is_not_corrected():
    f, x, s, y, n = context(MIN_CONTEXT - 1, 4, 3)
    assert fit_loo_correction(-f, f, x, s, y, n, s2=0.2) is None
    assert fit_loo_correction(-f[:1], f[:1], x[:1], s[:1], y[:1], n[:1], s2=0.2) is None


def test_a_constant_surface_feature_is_left_out():
    f, x, s, y, n = context(100, 4, 3, seed=4)
    s[:, 1] = 7.0
    got = fit_loo_correction(-f, f, x, s, y, n, s2=0.2)
    assert got.use_surface and got.mean[3] == 0.0 and np.all(np.isfinite(got(f, x, s + 1.0)[0]))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(MIN_CONTEXT, 60), d=st.integers(1, 5), k=st.integers(1, 4), seed=st.integers(0, 10_000),
       counts=st.sampled_from([1, 4, 10]))
def test_any_context_gives_a_finite_correction_and_positive_variance(n, d, k, seed, counts):
    rng = np.random.default_rng(seed)
    f, x, s = rng.normal(size=n) * 3, rng.normal(size=(n, d)), rng.integers(0, 3, (n, k)).astype(float)
    y = rng.integers(0, counts + 1, n) / counts  # includes all-0 and all-1 contexts
    got = fit_loo_correction(rng.normal(size=n) * 4, f, x, s, y, np.full(n, float(counts)), s2=1.0, a_var=0.1)
    shift, var = got(rng.normal(size=5), rng.normal(size=(5, d)), rng.normal(size=(5, k)))
    assert np.all(np.isfinite(shift)) and np.all(var >= 0)
    assert got.tau2 in TAU2_GRID and got.embed_var in EMBED_VAR_GRID


def small_context(table, n_ctx):
    rows = np.flatnonzero(table.policy == "pol2")
    return table.prompt[rows[:n_ctx]].tolist(), table.pass_rate[rows[:n_ctx]], table.prompt[rows[45:]].tolist()


def test_the_value_model_uses_it_when_asked_and_a_tiny_context_predicts_as_without(fitted, table):
    vm, off = copy.copy(fitted), copy.copy(fitted)
    vm.adapt, vm.correction, off.adapt = True, "surface", False
    args = small_context(table, 45)
    mean, var = vm.predict(*args)
    assert np.all((mean > 0) & (mean < 1) & (var > 0))
    assert not np.allclose(mean, off.predict(*args)[0])
    tiny = small_context(table, MIN_CONTEXT - 1)
    for a, b in zip(vm.predict(*tiny), off.predict(*tiny)):
        np.testing.assert_array_equal(a, b)


def test_with_adapt_off_the_correction_setting_changes_nothing(fitted, table):
    args = small_context(table, 45)
    history = table.select(table.policy != "pol2")
    got = []
    for correction in ("embedding", "surface"):
        vm = copy.copy(fitted)
        vm.adapt, vm.correction = False, correction
        got.append([*vm.predict(*args), *vm.predict(*args, history=history)])
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)


def test_the_setting_is_saved_checked_and_defaults_for_older_configs(fitted, tmp_path):
    from v05.value import ValueModel

    vm = copy.copy(fitted)
    vm.correction = "surface"
    assert ValueModel.load(vm.save(tmp_path / "m")).correction == "surface"
    with pytest.raises(ValueError, match="correction must be one of \\['embedding', 'surface'\\]; got 'loo'"):
        ValueModel(correction="loo").validate_params()
    assert ValueModel.load("default").correction == "embedding"  # the shipped config predates the setting
