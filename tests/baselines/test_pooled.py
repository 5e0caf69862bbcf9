"""eb_batch, js_loo and v05_eb_reg (docs/method.md 3.11-3.13): exact reductions, edge-case rules, by-hand values."""

from __future__ import annotations

import numpy as np
import pytest
from batch_strategies import batches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v05.baselines import UndefinedError, compute
from v05.baselines.running import RunningMoments
from v05.baselines.shrinkage import calibration_line

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
valid_batches = batches(min_groups=1, max_groups=6, min_size=1, max_size=6)
EXACT = {"rtol": 0, "atol": 0}


def run(name, batch, **options):
    prior = batch["prior"] if name.startswith("v05") else None
    return compute(name, batch["rewards"], batch["group"], prior=prior, scale=batch["scale"], **options)


def same_or_both_raise(a, b):
    """Run two thunks: both raise UndefinedError, or both return the same baseline and advantage exactly."""
    try:
        want = b()
    except UndefinedError:
        with pytest.raises(UndefinedError):
            a()
        return None, None
    got = a()
    np.testing.assert_array_equal(got.baseline, want.baseline)
    np.testing.assert_array_equal(got.advantage, want.advantage)
    return got, want


# -- the exact reductions of v05_eb_reg ---------------------------------------------------------------------


@PROPS
@given(batch=valid_batches, tau2=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_reg_with_slope_zero_is_exactly_eb_batch(batch, tau2):
    same_or_both_raise(lambda: run("v05_eb_reg", batch, slope=0.0, tau2=tau2), lambda: run("eb_batch", batch, tau2=tau2))


@PROPS
@given(batch=valid_batches, centre=st.floats(0.0, 1.0))
def test_reg_with_a_flat_line_is_eb_batch_with_that_global_mean(batch, centre):
    same_or_both_raise(lambda: run("v05_eb_reg", batch, slope=0.0, intercept=centre),
                       lambda: run("eb_batch", batch, global_mean=centre))


@pytest.mark.parametrize("reg, fixed_prior", [("v05_eb_reg", "v05_eb"), ("v05_eb_reg_loo", "v05_eb_loo")])
@PROPS
@given(batch=valid_batches, tau2=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_reg_with_the_identity_line_is_exactly_the_form_with_the_prior_as_it_is(reg, fixed_prior, batch, tau2):
    """v05_eb_reg at slope 1, intercept 0 is v05_eb; its leave-one-out twin is v05_eb_loo."""
    got, want = same_or_both_raise(lambda: run(reg, batch, slope=1.0, intercept=0.0, tau2=tau2),
                                   lambda: run(fixed_prior, batch, tau2=tau2))
    if got is not None:
        np.testing.assert_array_equal(got.weight, want.weight)


@PROPS
@given(batch=valid_batches, value=st.sampled_from([0.0, 0.37, 1.0]))
def test_reg_with_every_prior_equal_is_exactly_eb_batch(batch, value):
    """The slope is not identifiable: it is 0, and the fitted intercept is the batch mean (eb_batch)."""
    batch = dict(batch, prior=np.full(len(batch["rewards"]), value))
    same_or_both_raise(lambda: run("v05_eb_reg", batch), lambda: run("eb_batch", batch))


@PROPS
@given(batch=batches(min_groups=2, max_groups=6, min_size=2, max_size=6), slope=st.floats(-2.0, 2.0),
       intercept=st.floats(-0.5, 1.0))
def test_reg_baseline_lies_between_the_line_and_the_mean(batch, slope, intercept):
    out = run("v05_eb_reg", batch, slope=slope, intercept=intercept)
    scale = batch["scale"]
    lo, hi = {"binary": (0.0, 1.0), "pm1": (-1.0, 1.0)}[scale] if isinstance(scale, str) else scale
    width = hi - lo
    centre = lo + width * np.clip(intercept + slope * batch["prior"], 0.0, 1.0)
    mean = run("mean", batch).baseline
    assert (out.baseline >= np.minimum(centre, mean) - 1e-12).all()
    assert (out.baseline <= np.maximum(centre, mean) + 1e-12).all()
    np.testing.assert_allclose(out.baseline - centre, out.weight * (mean - centre), rtol=1e-9, atol=1e-12)


def test_reg_repairs_a_linearly_biased_prior():
    """Priors 0.5 V + 0.4 of the truth: the fitted line undoes the bias, so with enough groups the centres sit
    on the true pass rates and the baselines are far closer to them than v05_eb's."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 200)
    k = 4
    rewards = (rng.random((200, k)) < truth[:, None]).astype(float).ravel()
    group = np.repeat(np.arange(200), k)
    prior = np.repeat(0.4 + 0.5 * truth, k)
    reg = compute("v05_eb_reg", rewards, group, prior=prior)
    eb = compute("v05_eb", rewards, group, prior=prior)
    err = lambda b: float(((b - np.repeat(truth, k)) ** 2).mean())
    assert err(reg.baseline) < 0.25 * err(eb.baseline)
    a, b, fitted = calibration_line(compute("mean", rewards, group).baseline[::k], np.full(200, k), prior[::k])
    assert fitted == 2 and abs(b - 2.0) < 0.3 and abs(a + 0.8) < 0.2  # the inverse of V = 0.5 p + 0.4


def test_calibration_line_recovers_an_exact_line_and_keeps_given_values():
    prior = np.array([0.1, 0.4, 0.8])
    mean = 0.2 + 0.5 * prior
    a, b, fitted = calibration_line(mean, np.array([2, 3, 5]), prior)
    assert fitted == 2 and a == pytest.approx(0.2, abs=1e-15) and b == pytest.approx(0.5, abs=1e-15)
    assert calibration_line(mean, np.array([2, 3, 5]), prior, slope=0.5, intercept=0.1) == (0.1, 0.5, 0)
    a, b, fitted = calibration_line(mean, np.array([2, 3, 5]), prior, intercept=0.2)
    assert fitted == 1 and b == pytest.approx(0.5, abs=1e-15)
    assert calibration_line(mean, np.array([2, 3, 5]), np.zeros(3), intercept=0.2) == (0.2, 0.0, 0)
    a, b, fitted = calibration_line(mean, np.array([1, 1, 2]), np.full(3, 0.3))  # slope undefined: 0
    assert (b, fitted) == (0.0, 1) and a == (mean[0] + mean[1] + 2 * mean[2]) / 4


def test_reg_with_a_line_through_every_group_mean_returns_the_means():
    """Two groups and a fitted line (2 parameters): the residuals are 0 whatever the rewards; w = 1."""
    out = compute("v05_eb_reg", [1.0, 0.0, 1.0, 1.0, 1.0], list("aabbb"), prior=[0.2, 0.2, 0.9, 0.9, 0.9])
    np.testing.assert_array_equal(out.baseline, [0.5, 0.5, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out.weight, 1.0)


# -- eb_batch ----------------------------------------------------------------------------------------------


def test_eb_batch_by_hand():
    # a = [1, 1, 0, 1], b = [0, 0], s = [1] (a lone rollout: in the centre, not in the moments)
    rewards, group = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], list("aaaabbs")
    m = 4 / 7
    s2_a, s2_b = 0.25, 0.0  # unbiased: a: 3 (1/4)^2 + (3/4)^2 = 3/4 over 3; b: 0
    inflate = 3 / 2  # 3 groups, 1 fitted parameter (the centre)
    tau2 = (inflate * (0.75 - m) ** 2 - s2_a / 4 + inflate * (0.0 - m) ** 2 - s2_b / 2) / 2
    sigma2 = (s2_a + s2_b) / 2
    w = {g: tau2 / (tau2 + sigma2 / kk) for g, kk in (("a", 4), ("b", 2), ("s", 1))}
    want = [m + w["a"] * (0.75 - m)] * 4 + [m + w["b"] * (0.0 - m)] * 2 + [m + w["s"] * (1.0 - m)]
    np.testing.assert_allclose(compute("eb_batch", rewards, group).baseline, want, rtol=1e-13)


def test_eb_batch_gives_an_all_fail_group_a_signal():
    """EBPO's point: an all-fail group is shrunk toward the batch mean, so its rollouts get a negative advantage
    (GRPO gives them 0)."""
    rewards, group = [0.0] * 4 + [1.0, 0.0, 1.0, 1.0] + [1.0, 1.0, 0.0, 0.0], [0] * 4 + [1] * 4 + [2] * 4
    out = compute("eb_batch", rewards, group)
    assert (out.advantage[:4] < 0).all()
    np.testing.assert_array_equal(compute("mean", rewards, group).advantage[:4], 0.0)


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_eb_batch_all_equal_batch_returns_the_common_value(value):
    """Between-group and within-group variance both 0: the means count as exact (w = 1)."""
    out = compute("eb_batch", [value] * 6, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(out.baseline, value)
    np.testing.assert_array_equal(out.advantage, 0.0)


def test_eb_batch_equal_group_means_shrink_fully_to_the_batch_mean():
    """Between-group variance 0 (every group mean 1/2), within-group > 0: tau2 = 0, b = the batch mean."""
    out = compute("eb_batch", [1.0, 0.0, 0.0, 1.0, 1.0, 0.0], [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(out.baseline, 0.5)


def test_eb_batch_one_group_is_the_plain_mean():
    out = compute("eb_batch", [1.0, 0.0, 0.0], [7, 7, 7])
    np.testing.assert_array_equal(out.baseline, compute("mean", [1.0, 0.0, 0.0], [7, 7, 7]).baseline)
    np.testing.assert_array_equal(compute("eb_batch", [1.0], ["lone"]).advantage, 0.0)


def test_eb_batch_with_only_lone_rollouts_raises_unless_tau2_given():
    with pytest.raises(UndefinedError, match=r"eb_batch learns how far to shrink from groups with >= 2 rollouts.*"
                                             r"pass tau2="):
        compute("eb_batch", [1.0, 0.0, 1.0], ["a", "b", "c"])
    out = compute("eb_batch", [1.0, 0.0, 1.0], ["a", "b", "c"], tau2=0.25)  # sigma2: worst case 1/4, w = 1/2
    np.testing.assert_allclose(out.baseline, [2 / 3 + 0.5 * (1 - 2 / 3), 2 / 3 - 0.5 * 2 / 3, 2 / 3 + 0.5 / 3])


def test_eb_batch_global_mean_is_the_centre():
    rewards, group = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0], [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(compute("eb_batch", rewards, group, global_mean=0.2, tau2=0.0).baseline, 0.2)
    with pytest.raises(ValueError, match=r"eb_batch: global_mean == 1.5, must be .*<= 1"):
        compute("eb_batch", rewards, group, global_mean=1.5)


def test_running_moments_match_numpy_and_feed_eb_batch():
    rng = np.random.default_rng(1)
    steps = [rng.random(n) for n in (5, 1, 9, 3)]
    moments = RunningMoments()
    for values in steps:
        moments.update(values)
    everything = np.concatenate(steps)
    assert moments.count == 18
    assert moments.mean == pytest.approx(everything.mean(), rel=1e-14)
    assert moments.var == pytest.approx(everything.var(ddof=1), rel=1e-12)
    assert np.isnan(RunningMoments().var)
    with pytest.raises(ValueError, match="values must be finite"):
        moments.update([0.5, float("nan")])
    compute("eb_batch", [1.0, 0.0, 1.0, 1.0], [0, 0, 1, 1], global_mean=moments.mean)


# -- js_loo ------------------------------------------------------------------------------------------------


@PROPS
@given(batch=batches(min_groups=1, max_groups=6, min_size=2, max_size=5, scales=("binary",)), data=st.data())
def test_js_baseline_of_a_rollout_ignores_its_own_reward(batch, data):
    """Leave-one-out at both levels: flipping r_i moves other rollouts' baselines, never b_i."""
    rewards = np.asarray(batch["rewards"], float)
    i = data.draw(st.integers(0, len(rewards) - 1))
    flipped = rewards.copy()
    flipped[i] = 1.0 - flipped[i]
    a = compute("js_loo", rewards, batch["group"]).baseline[i]
    b = compute("js_loo", flipped, batch["group"]).baseline[i]
    assert a == pytest.approx(b, abs=1e-12)


def test_js_with_fewer_than_three_prompts_is_exactly_rloo():
    for rewards, group in [([1.0, 0.0, 1.0], [0, 0, 0]), ([1.0, 0.0, 1.0, 1.0, 0.0], [0, 0, 0, 1, 1])]:
        np.testing.assert_array_equal(compute("js_loo", rewards, group).baseline, compute("rloo", rewards, group).baseline)


def test_js_by_hand():
    # a = [1, 0], b = [1, 1], c = [0, 0, 1]; rollout 0 (group a, r = 1): RLOO mean u = 0
    rewards, group = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0], list("aabbccc")
    noise = (0.0 / 2 + (1 / 3) / 3) / 2  # others b, c: s2_b = 0, s2_c = 1/3
    spread = max(0.0, np.var([1.0, 1 / 3], ddof=1) - noise)
    w = spread / (spread + noise)
    rest = 3 / 5
    assert compute("js_loo", rewards, group).baseline[0] == pytest.approx(rest + w * (0.0 - rest), rel=1e-13)


def test_js_all_equal_batch_and_lone_rollouts():
    np.testing.assert_array_equal(compute("js_loo", [1.0] * 6, [0, 0, 1, 1, 2, 2]).advantage, 0.0)
    with pytest.raises(UndefinedError, match=r"group 'x' has 1 rollout\(s\); js_loo needs >= 2"):
        compute("js_loo", [1.0, 0.0, 1.0], ["a", "a", "x"])


# -- v05_eb_reg_loo --------------------------------------------------------------------------------------------


@PROPS
@given(batch=batches(min_groups=1, max_groups=6, min_size=1, max_size=5, scales=("binary",)), data=st.data(),
       options=st.sampled_from([{}, {"slope": 0.0}, {"intercept": 0.2}, {"tau2": 0.05}]))
def test_reg_loo_baseline_of_a_rollout_ignores_its_own_reward(batch, data, options):
    """The line, tau2 and sigma2 are fitted without the own group, the mean without the own rollout."""
    rewards = np.asarray(batch["rewards"], float)
    i = data.draw(st.integers(0, len(rewards) - 1))
    flipped = rewards.copy()
    flipped[i] = 1.0 - flipped[i]
    try:
        a = compute("v05_eb_reg_loo", rewards, batch["group"], prior=batch["prior"], **options).baseline[i]
    except UndefinedError:
        return
    b = compute("v05_eb_reg_loo", flipped, batch["group"], prior=batch["prior"], **options).baseline[i]
    assert a == pytest.approx(b, abs=1e-12)


def test_reg_loo_lone_rollout_gets_its_centre_and_one_group_needs_a_given_line():
    rewards, group = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0], ["solo", "a", "a", "b", "b", "b"]
    prior = [0.3] + [0.5] * 2 + [0.9] * 3
    out = compute("v05_eb_reg_loo", rewards, group, prior=prior, slope=0.5, intercept=0.1)
    assert out.baseline[0] == 0.1 + 0.5 * 0.3 and out.weight[0] == 0.0
    with pytest.raises(UndefinedError, match=r"v05_eb_reg_loo fits the line without each group.*one group"):
        compute("v05_eb_reg_loo", [1.0, 0.0], [0, 0], prior=[0.5, 0.5])
    with pytest.raises(UndefinedError, match=r"without group 'a' no group has >= 2 rollouts; pass tau2="):
        compute("v05_eb_reg_loo", [1.0, 0.0, 1.0, 0.0, 1.0], ["a", "a", "s1", "s2", "s3"],
                prior=[0.5, 0.5, 0.2, 0.7, 0.4])
