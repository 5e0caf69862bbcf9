import numpy as np
from scipy.special import expit

from v05.value.irt import fit_irt, logit_normal_loglik, logit_normal_moments, stacked_shift


def simulate(n_policies=5, n_prompts=200, n=20, seed=0):
    rng = np.random.default_rng(seed)
    a, d = np.linspace(-1, 1, n_policies), rng.normal(0, 1.5, n_prompts)
    pol, pro = np.repeat(np.arange(n_policies), n_prompts), np.tile(np.arange(n_prompts), n_policies)
    p = rng.binomial(n, expit(a[pol] - d[pro])) / n
    return a, d, pol, pro, p, np.full(len(p), float(n))


def test_recovers_abilities_and_difficulties():
    a, d, pol, pro, p, n = simulate()
    fit = fit_irt(pol, pro, p, n, np.zeros(len(d)), len(a), tau2=4.0, s2=0.05)
    a_hat = fit.a - fit.a.mean()
    np.testing.assert_allclose(a_hat, a - a.mean(), atol=0.15)
    assert np.corrcoef(fit.d, d)[0, 1] > 0.95


def test_prompts_without_rows_keep_the_prior_and_variance_shrinks_with_rows():
    # 4 policies share 20 anchor prompts; prompt 20 + k is seen by the first k policies; prompt 25 by none
    pol = [j for j in range(4) for _ in range(20)] + [j for k in (1, 2, 3, 4) for j in range(k)]
    pro = [i for _ in range(4) for i in range(20)] + [20 + k for k in (1, 2, 3, 4) for _ in range(k)]
    p = np.full(len(pol), 0.5)
    prior = np.concatenate([np.zeros(25), [0.7]])
    fit = fit_irt(np.array(pol), np.array(pro), p, np.full(len(pol), 8.0), prior, 4, tau2=2.0, s2=0.5)
    assert fit.d[25] == 0.7 and fit.d_var[25] == 2.0
    assert np.all(np.diff(fit.d_var[21:25]) < 0) and fit.d_var[21] < 2.0


def test_all_zero_policy_keeps_a_finite_ability():
    pol, pro = np.zeros(10, dtype=int), np.arange(10)
    fit = fit_irt(pol, pro, np.zeros(10), np.full(10, 8.0), np.zeros(10), 1, tau2=1.0, s2=0.5)
    assert np.isfinite(fit.a).all() and fit.a[0] < -2


def test_logit_normal_moments_match_monte_carlo():
    rng = np.random.default_rng(1)
    mean, var = np.array([-1.0, 0.0, 2.0]), np.array([0.3, 2.0, 1.0])
    draws = expit(mean[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((3, 400_000)))
    m, v = logit_normal_moments(mean, var)
    np.testing.assert_allclose(m, draws.mean(1), atol=2e-3)
    np.testing.assert_allclose(v, draws.var(1), atol=2e-3)


def test_loglik_prefers_the_true_variance():
    rng = np.random.default_rng(2)
    eta = rng.normal(0, 1.0, 4000)
    n = np.full(4000, 20.0)
    p = rng.binomial(20, expit(eta)) / 20
    ll = {v: logit_normal_loglik(p, n, np.zeros(4000), np.full(4000, v)).mean() for v in (0.25, 1.0, 4.0)}
    assert ll[1.0] > ll[0.25] and ll[1.0] > ll[4.0]


def test_stacked_shift_follows_a_twin_policy():
    # policy 0 (target) and its twin 1 share prompt-specific deviations; policy 2 is independent of both
    rng = np.random.default_rng(3)
    n_prompts = 400
    d, dev, noise = rng.normal(0, 1, n_prompts), rng.normal(0, 1.5, n_prompts), rng.normal(0, 1.5, n_prompts)
    truth = {0: expit(-d + dev), 1: expit(-d + dev), 2: expit(-d + noise)}
    ctx, tgt = np.arange(300), np.arange(300, 400)
    pol = np.concatenate([np.zeros(300, int), np.ones(n_prompts, int), np.full(n_prompts, 2)])
    pro = np.concatenate([ctx, np.arange(n_prompts), np.arange(n_prompts)])
    p = np.concatenate([rng.binomial(20, truth[0][ctx]) / 20, rng.binomial(20, truth[1]) / 20, rng.binomial(20, truth[2]) / 20])
    n = np.full(len(p), 20.0)
    fit = fit_irt(pol, pro, p, n, np.zeros(n_prompts), 3, tau2=4.0, s2=1.0)
    shift = stacked_shift(fit, pol, pro, p, n, tgt, prior_precision=1.0)
    base = fit.a[0] - fit.d[tgt]
    err = lambda eta: np.mean((expit(eta) - truth[0][tgt]) ** 2)  # noqa: E731
    assert err(base + shift) < 0.7 * err(base)
    assert np.all(stacked_shift(fit, pol[:300], pro[:300], p[:300], n[:300], tgt, prior_precision=1.0) == 0)
