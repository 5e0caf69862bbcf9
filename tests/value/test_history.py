"""The history prior: each prompt's Beta posterior of its own outcomes around a Beta prior fitted by moments."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v05.value import HistoryPrior
from v05.value.history import beta_moments, fit_beta_prior
from v05.value.prior import OutcomeHistory

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

rows = st.lists(st.tuples(st.integers(0, 5), st.sampled_from("abcdef"), st.integers(1, 8), st.data()),
                min_size=0, max_size=25)


def _history(draws) -> OutcomeHistory:
    h = OutcomeHistory()
    for step, prompt, n, data in sorted(draws, key=lambda r: r[0]):
        wins = data.draw(st.integers(0, n))
        h.add(step, [prompt], [wins / n], [n])
    return h


def _reference(history: OutcomeHistory, step: int, targets: list[str]):
    """Slow loop: successes and tries per prompt, the moment fit written out, then each target's posterior."""
    wins, tries = {}, {}
    for s, p, r, n in zip(history.step, history.prompt, history.pass_rate, history.n_samples):
        if s < step:
            wins[p] = wins.get(p, 0.0) + r * n
            tries[p] = tries.get(p, 0.0) + n
    if not tries:
        a0 = b0 = 1.0
    else:
        rates = [wins[p] / tries[p] for p in tries]
        m = sum(rates) / len(rates)
        spread = sum((r - m) ** 2 for r in rates) / len(rates)
        noise = sum(m * (1 - m) / tries[p] for p in tries) / len(rates)
        v = spread - noise
        top = max(2.0, len(rates))
        kappa = top if v <= 0 else min(max(m * (1 - m) / v - 1, 2.0), top)
        m = min(max(m, 0.5 / kappa), 1 - 0.5 / kappa)
        a0, b0 = m * kappa, (1 - m) * kappa
    means, variances = [], []
    for t in targets:
        a, b = a0 + wins.get(t, 0.0), b0 + tries.get(t, 0.0) - wins.get(t, 0.0)
        means.append(a / (a + b))
        variances.append(a * b / ((a + b) ** 2 * (a + b + 1)))
    return np.array(means), np.array(variances)


@PROPS
@given(rows, st.integers(0, 7))
def test_matches_the_reference_loop_and_stays_a_probability(draws, step):
    h = _history(draws)
    targets = list("abcdefz")
    prior = HistoryPrior().predict(h, step, targets)
    mean, var = _reference(h, step, targets)
    np.testing.assert_allclose(prior.mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prior.var, var, rtol=1e-10, atol=1e-12)
    assert np.all((prior.mean > 0) & (prior.mean < 1)) and np.all(prior.var > 0)
    assert np.all(prior.var <= prior.mean * (1 - prior.mean) / 3 + 1e-15)  # strength alpha + beta >= 2


@PROPS
@given(rows, st.integers(0, 7))
def test_cold_prompts_get_the_fitted_prior(draws, step):
    h = _history(draws)
    prior = HistoryPrior().predict(h, step, ["z", "never seen"])
    end = sum(s < step for s in h.step)
    wins, tries = {}, {}
    for p, r, n in zip(h.prompt[:end], h.pass_rate[:end], h.n_samples[:end]):
        wins[p], tries[p] = wins.get(p, 0) + r * n, tries.get(p, 0) + n
    fitted = beta_moments(*fit_beta_prior(np.array(list(wins.values())), np.array(list(tries.values()))))
    np.testing.assert_allclose(prior.mean, fitted[0])
    np.testing.assert_allclose(prior.var, fitted[1])


@PROPS
@given(st.floats(0.5, 50), st.floats(0.5, 50), st.integers(1, 200), st.floats(0, 1))
def test_variance_shrinks_with_more_tries(alpha, beta, n, rate):
    """At the prior's own mean the posterior variance falls with every try; at any rate it stays under the
    bound 1 / (4 (alpha + beta + n + 1)), which falls with n."""
    m = alpha / (alpha + beta)
    _, v1 = beta_moments(alpha + m * n, beta + (1 - m) * n)
    _, v2 = beta_moments(alpha + m * 2 * n, beta + (1 - m) * 2 * n)
    _, v0 = beta_moments(alpha, beta)
    assert v2 < v1 < v0
    _, v = beta_moments(alpha + rate * n, beta + (1 - rate) * n)
    assert v <= 1 / (4 * (alpha + beta + n + 1)) + 1e-15


def test_the_fit_edge_rules():
    assert fit_beta_prior(np.zeros(0), np.zeros(0)) == (1.0, 1.0)  # no history: Beta(1, 1)
    assert HistoryPrior().predict(OutcomeHistory(), 0, ["a"]).var[0] == pytest.approx(1 / 12)
    a, b = fit_beta_prior(np.array([3.0]), np.array([4.0]))  # one prompt: strength 2 around its rate
    assert (a, b) == pytest.approx((1.5, 0.5))
    a, b = fit_beta_prior(np.array([2.0, 4.0, 6.0]), np.array([4.0, 8.0, 12.0]))  # all-equal rates: strength P
    assert (a, b) == pytest.approx((1.5, 1.5))
    a, b = fit_beta_prior(np.zeros(10), np.full(10, 4.0))  # every rate 0: alpha kept at 0.5
    assert (a, b) == pytest.approx((0.5, 9.5))
    # spread well above the binomial noise: the plain moment fit, strength m (1 - m) / v - 1
    rates = np.array([0.3, 0.7] * 10)
    a, b = fit_beta_prior(rates * 1000, np.full(20, 1000.0))
    v = 0.04 - 0.25 / 1000
    assert a + b == pytest.approx(0.25 / v - 1) and a / (a + b) == pytest.approx(0.5)


def test_a_prompts_posterior_counts_its_own_rows_before_the_step_only():
    h = OutcomeHistory()
    h.add(0, ["a", "b"], [0.5, 0.0], [4, 4])
    h.add(1, ["a"], [1.0], [4])
    h.add(2, ["a"], [0.0], [100])  # not yet seen at step 2
    prior = HistoryPrior().predict(h, 2, ["a"])
    a0, b0 = fit_beta_prior(np.array([6.0, 0.0]), np.array([8.0, 4.0]))
    assert prior.mean[0] == pytest.approx((a0 + 6) / (a0 + b0 + 8))


def _cold_reference(pass_rate, counts):
    """Slow loop: each scored prompt's prior is the moment fit of the other half (by position among the scored
    ones), an unscored prompt's the fit of all scored ones; under two scored prompts, Beta(1, 1)."""
    seen = [j for j, n in enumerate(counts) if n > 0]
    out = [(0.5, 1 / 12)] * len(counts)
    if len(seen) < 2:
        return np.array(out).reshape(-1, 2).T
    for j in range(len(counts)):
        if counts[j] > 0:
            half = seen.index(j) % 2
            others = [i for k, i in enumerate(seen) if k % 2 != half]
        else:
            others = seen
        h = OutcomeHistory()
        h.add(0, [f"p{i}" for i in others], [pass_rate[i] for i in others], [counts[i] for i in others])
        prior = HistoryPrior().predict(h, 1, ["cold"])
        out[j] = (float(prior.mean[0]), float(prior.var[0]))
    return np.array(out).T


@PROPS
@given(st.lists(st.tuples(st.integers(0, 6), st.data()), min_size=0, max_size=12))
def test_a_cold_batch_gets_the_cross_fitted_batch_level_prior(draws):
    counts = [n for n, _ in draws]
    pass_rate = [d.draw(st.integers(0, n)) / n if n else 0.0 for n, d in draws]
    prior = HistoryPrior().cold_start(pass_rate, counts)
    mean, var = _cold_reference(pass_rate, counts)
    np.testing.assert_allclose(prior.mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prior.var, var, rtol=1e-10, atol=1e-12)


def test_a_cold_batch_never_reads_its_own_outcome():
    counts = [4, 4, 4, 4]
    base = HistoryPrior().cold_start([0.0, 1.0, 0.25, 0.5], counts)
    moved = HistoryPrior().cold_start([1.0, 1.0, 0.25, 0.5], counts)  # prompt 0's own outcome changes
    assert moved.mean[0] == base.mean[0] and moved.mean[2] == base.mean[2]  # same half: unchanged
    assert moved.mean[1] > base.mean[1] and moved.mean[3] > base.mean[3]  # the other half reads it
    assert HistoryPrior().cold_start([0.5], [4]).mean.tolist() == [0.5]  # one prompt: Beta(1, 1)
