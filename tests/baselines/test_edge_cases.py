"""One test per edge-case rule stated in the module docstrings of ``empirical.py`` and ``fused.py``."""

from __future__ import annotations

import numpy as np
import pytest

from v05.baselines import compute, get_estimator, list_estimators

ALL = list_estimators()
FUSED_LOO = [n for n in ALL if get_estimator(n).uses_prior and n.endswith("_loo")]


def kw(name, n, prior=0.5, prior_var=0.01):
    entry = get_estimator(name)
    return {"prior": [prior] * n if entry.uses_prior else None,
            "prior_var": [prior_var] * n if entry.needs_prior_var else None}


@pytest.mark.parametrize("name", ["mean", "dr_grpo"])
def test_singleton_under_mean_has_baseline_reward_and_zero_advantage(name):
    out = compute(name, [0.3, 1.0, 0.0, 0.7], ["solo", "a", "a", "solo2"])
    assert out.baseline[0] == 0.3 and out.advantage[0] == 0.0
    assert out.baseline[3] == 0.7 and out.advantage[3] == 0.0
    out = compute(name, [-1.0, 1.0, -1.0], ["s", "a", "a"], scale="pm1")
    assert out.baseline[0] == -1.0 and out.advantage[0] == 0.0


def test_rloo_singleton_raises_naming_the_group():
    with pytest.raises(ValueError, match=r"group 'gsm8k/41' has 1 rollout\(s\); rloo needs >= 2 \(1 group\(s\) too small\)"):
        compute("rloo", [1.0, 0.0, 1.0], ["gsm8k/7", "gsm8k/7", "gsm8k/41"])
    with pytest.raises(ValueError, match=r"group 12 has 1 rollout\(s\); rloo needs >= 2 \(2 group"):
        compute("rloo", [1.0, 0.0, 1.0, 0.0], [3, 3, 12, 40])


def test_grpo_group_std_singleton_raises_but_batch_and_none_do_not():
    with pytest.raises(ValueError, match=r"group 'x' has 1 rollout\(s\); grpo with std_scale='group' and ddof=1 needs >= 2"):
        compute("grpo", [1.0, 0.0, 1.0], ["a", "a", "x"])
    for std_scale in ("batch", "none"):
        out = compute("grpo", [1.0, 0.0, 1.0], ["a", "a", "x"], std_scale=std_scale)
        assert out.advantage[2] == 0.0 and np.isfinite(out.advantage).all()
    out = compute("grpo", [1.0, 0.0, 1.0], ["a", "a", "x"], ddof=0)  # population std: defined for k = 1
    assert out.advantage[2] == 0.0


def test_dapo_drops_singletons_and_all_equal_groups():
    rewards = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.5, 0.5]
    group = ["ok", "ok", "all1", "all0", "all0", "solo", "ok", "all1", "half", "half"]
    out = compute("dapo", rewards, group)
    keep = np.array([g == "ok" for g in group])
    np.testing.assert_array_equal(out.keep, keep)
    np.testing.assert_array_equal(out.advantage[~keep], 0.0)
    assert (out.advantage[keep] != 0).all()


def test_dapo_drops_an_all_equal_group_of_non_dyadic_rewards():
    out = compute("dapo", [0.1, 0.1, 0.1, 1.0, 0.0], ["a", "a", "a", "b", "b"])
    np.testing.assert_array_equal(out.keep, [False, False, False, True, True])
    np.testing.assert_array_equal(out.advantage[:3], 0.0)


@pytest.mark.parametrize("name", ["grpo", "dapo"])
@pytest.mark.parametrize("rewards, scale", [([0.1, 0.1, 0.1], "binary"), ([1.491501] * 3, (-2.0, 3.0))])
def test_all_equal_group_advantage_is_exactly_zero(name, rewards, scale):
    out = compute(name, rewards + [1.0, 0.0], ["a"] * 3 + ["b", "b"], scale=scale)
    np.testing.assert_array_equal(out.advantage[:3], 0.0)


# v05_eb_reg_loo's singleton baseline is its fitted centre, not V: test_pooled.py
@pytest.mark.parametrize("name", [n for n in FUSED_LOO if n != "v05_eb_reg_loo"])
@pytest.mark.parametrize("scale, reward", [("binary", 1.0), ("binary", 0.0), ("pm1", -1.0), ((0.0, 10.0), 7.0)])
def test_fused_loo_singleton_baseline_is_the_prior(name, scale, reward):
    lo, hi = {"binary": (0.0, 1.0), "pm1": (-1.0, 1.0)}.get(scale, scale) if isinstance(scale, str) else scale
    rewards = [reward, hi, lo, hi, lo, lo]
    group = ["solo", "a", "a", "b", "b", "b"]
    prior = [0.3, 0.5, 0.5, 0.9, 0.9, 0.9]
    out = compute(name, rewards, group, prior=prior, prior_var=[0.02] * 6, scale=scale)
    assert out.baseline[0] == lo + (hi - lo) * 0.3
    assert out.weight[0] == 0.0
    assert out.advantage[0] == pytest.approx(reward - out.baseline[0], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", [n for n in ALL if get_estimator(n).uses_prior])
@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_prior_exactly_zero_or_one(name, prior):
    # one group agreeing with the prior (all 0 / all 1), one contradicting it, one mixed
    agree = [prior] * 4
    contradict = [1.0 - prior] * 4
    rewards = agree + contradict + [1.0, 0.0, 1.0, 0.0]
    group = ["agree"] * 4 + ["contra"] * 4 + ["mixed"] * 4
    out = compute(name, rewards, group, prior=[prior] * 12, prior_var=[0.0] * 12)
    for arr in (out.baseline, out.advantage, out.weight):
        assert np.isfinite(arr).all()
    assert ((out.weight >= 0) & (out.weight <= 1)).all()
    if not name.startswith("v05_eb_reg"):  # they ignore a constant prior (slope 0: eb_batch), test_pooled.py
        np.testing.assert_array_equal(out.baseline[:4], prior)  # prior == every rollout: used as given
    assert ((out.baseline >= 0) & (out.baseline <= 1)).all()


def test_eb_clips_priors_only_where_they_set_a_variance():
    """Hand moment fit: V = 1 and V = 0 enter a = V(1-V) as 0.98 * 0.02, not as 0."""
    rewards = [1.0] * 4 + [0.0] * 4 + [1.0] * 4
    group = ["A"] * 4 + ["B"] * 4 + ["C"] * 4
    prior = [1.0] * 4 + [0.0] * 4 + [0.5] * 4
    # A, B: d2 = 0, a = 0.0196, num = -0.0196/4, den = 0.0196 * 3/4; C: d2 = 1/4, a = 1/4, num = 3/16, den = 3/16
    rho = (3 / 16 - 2 * 0.0049) / (3 / 16 + 2 * 0.0147)  # 0.8192715537...
    w = 4 * rho / (4 * rho + 1 - rho)  # 0.94773333...
    out = compute("v05_eb_beta", rewards, group, prior=prior)
    np.testing.assert_allclose(out.weight, w, rtol=1e-12)
    np.testing.assert_allclose(out.baseline, [1.0] * 4 + [0.0] * 4 + [w + (1 - w) * 0.5] * 4, rtol=1e-12)
    np.testing.assert_array_equal(out.baseline[:8], [1.0] * 4 + [0.0] * 4)  # prior used as given


def test_eb_leaves_singletons_out_of_the_moment_fit():
    base = compute("v05_eb_beta", [1.0, 1.0, 0.0, 0.0, 1.0, 0.0], list("aaabbb"), prior=[0.2] * 3 + [0.6] * 3)
    # a singleton far from its prior would push rho up if it were counted
    more = compute("v05_eb_beta", [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0], list("aaabbbs"), prior=[0.2] * 3 + [0.6] * 3 + [0.0])
    np.testing.assert_array_equal(more.weight[:6], base.weight)
    rho = base.weight[0] / (3 - 2 * base.weight[0])  # invert w = 3 rho / (3 rho + 1 - rho) = 3 rho / (2 rho + 1)
    np.testing.assert_allclose(more.weight[6], rho, rtol=1e-12)  # k = 1: w = rho


def test_eb_with_only_singletons_raises_unless_rho_given():
    with pytest.raises(ValueError, match=r"v05_eb_beta learns how far to trust the prior.*pass rho="):
        compute("v05_eb_beta", [1.0, 0.0], ["a", "b"], prior=[0.5, 0.5])
    out = compute("v05_eb_beta", [1.0, 0.0], ["a", "b"], prior=[0.5, 0.5], rho=0.5)
    np.testing.assert_allclose(out.weight, 0.5)


def test_gauss_eb_by_hand():
    # groups a = [1, 1, 0] (prior 0.2), b = [1, 0] (prior 0.9), s = [1] (prior 0.5, not informative)
    out = compute("v05_eb", [1.0, 1.0, 0.0, 1.0, 0.0, 1.0], list("aaabbs"), prior=[0.2] * 3 + [0.9] * 2 + [0.5])
    s2_a, s2_b = 1 / 3, 1 / 2  # unbiased sample variances
    tau2 = ((2 / 3 - 0.2) ** 2 - s2_a / 3 + (0.5 - 0.9) ** 2 - s2_b / 2) / 2
    sigma2 = (s2_a + s2_b) / 2
    w = [tau2 / (tau2 + sigma2 / k) for k in (3, 3, 3, 2, 2, 1)]
    np.testing.assert_allclose(out.weight, w, rtol=1e-12)
    np.testing.assert_allclose(out.baseline[0], 0.2 + w[0] * (2 / 3 - 0.2), rtol=1e-12)


def test_gauss_eb_with_only_singletons_raises_unless_tau2_given():
    with pytest.raises(ValueError, match=r"v05_eb learns how far to trust the prior.*pass tau2="):
        compute("v05_eb", [1.0, 0.0], ["a", "b"], prior=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"v05_eb_loo fits tau2 without each group's own rollouts, and without group 'only'"):
        compute("v05_eb_loo", [1.0, 0.0, 1.0, 0.0], ["only", "only", "s1", "s2"], prior=[0.5] * 4)
    out = compute("v05_eb", [1.0, 0.0], ["a", "b"], prior=[0.5, 0.5], tau2=0.25)  # sigma2: worst case 1/4
    np.testing.assert_allclose(out.weight, 0.5)


def test_eb_loo_fits_rho_without_the_own_group_and_names_the_group_it_cannot_fit():
    with pytest.raises(ValueError, match=r"without group 'only' no group has >= 2 rollouts"):
        compute("v05_eb_beta_loo", [1.0, 0.0, 1.0, 0.0], ["only", "only", "s1", "s2"], prior=[0.5] * 4)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scale", ["binary", "pm1", (0.0, 10.0)])
def test_all_equal_groups_give_finite_advantages(name, scale):
    lo, hi = {"binary": (0.0, 1.0), "pm1": (-1.0, 1.0)}.get(scale, scale) if isinstance(scale, str) else scale
    unit = [1.0] * 3 + [0.0] * 3 + [0.3] * 3 + [1.0, 0.0, 1.0]
    rewards = [lo + (hi - lo) * u for u in unit]
    group = ["ones"] * 3 + ["zeros"] * 3 + ["point3"] * 3 + ["mixed"] * 3
    for prior in (0.0, 0.5, 1.0):
        out = compute(name, rewards, group, scale=scale, **kw(name, 12, prior=prior, prior_var=0.0))
        assert np.isfinite(out.baseline).all() and np.isfinite(out.advantage).all()
        # eb_batch and js_loo shrink toward the batch: an all-equal group keeps a signal (test_pooled.py)
        if not get_estimator(name).uses_prior and name not in ("rloo", "reinforce_pp", "eb_batch", "js_loo"):
            # group-mean baselines: an all-equal group carries no signal, so its advantage is ~0
            assert np.abs(out.advantage[:9]).max() < 1e-9


def test_whole_batch_all_equal_is_finite_for_batch_scaled_estimators():
    for name, options in [("grpo", {"std_scale": "batch"}), ("reinforce_pp", {}),
                          ("reinforce_pp", {"group_baseline": False})]:
        out = compute(name, [1.0] * 5, [0, 0, 1, 1, 1], **options)
        np.testing.assert_array_equal(out.advantage, 0.0)


def test_reinforce_pp_needs_two_rollouts():
    with pytest.raises(ValueError, match="reinforce_pp whitens over the batch: it needs >= 2 rollouts"):
        compute("reinforce_pp", [1.0], ["a"])


def test_undefined_structures_raise_undefined_error_a_value_error():
    from v05.baselines import UndefinedError

    assert issubclass(UndefinedError, ValueError)
    for name, kwargs in [("rloo", {}), ("grpo", {}), ("v05_eb", {"prior": [0.5, 0.5]}),
                         ("v05_eb_beta", {"prior": [0.5, 0.5]})]:
        with pytest.raises(UndefinedError):
            compute(name, [1.0, 0.0], ["a", "b"], **kwargs)


def test_mix_needs_two_informative_groups_unless_its_parameters_are_given():
    rewards, group, prior = [1.0, 0.0, 1.0, 0.0], ["a", "a", "s1", "s2"], [0.5, 0.5, 0.3, 0.9]
    with pytest.raises(ValueError, match=r"v05_eb_mix fits pi, tau2, tau2_big on groups with >= 2 rollouts and "
                                         r"needs 2 such group\(s\); this batch has 1. Pass pi and tau2 and tau2_big"):
        compute("v05_eb_mix", rewards, group, prior=prior)
    with pytest.raises(ValueError, match=r"fits tau2_big on .* needs 2 such group\(s\); this batch has 1"):
        compute("v05_eb_mix", rewards, group, prior=prior, pi=0.1, tau2=0.01)
    np.testing.assert_array_equal(compute("v05_eb_mix", rewards, group, prior=prior, pi=0.0).weight,
                                  compute("v05_eb", rewards, group, prior=prior).weight)
    with pytest.raises(ValueError, match=r"v05_eb_mix fits tau2 .* needs 1 such group\(s\); this batch has 0"):
        compute("v05_eb_mix", [1.0, 0.0], ["a", "b"], prior=[0.5, 0.5], pi=0.0)


def test_mix_with_every_parameter_given_by_hand():
    """No informative group: sigma2 is its worst case 1/4 (as v05_eb's); k = 1, s2 = 1/4, d = 1 - 0.2."""
    pi, small, big = 0.1, 0.01, 0.5
    out = compute("v05_eb_mix", [1.0, 0.0], ["a", "b"], prior=[0.2, 0.2], pi=pi, tau2=small, tau2_big=big)
    d2, s2 = 0.8 ** 2, 0.25
    dens = lambda v: np.exp(-0.5 * d2 / v) / np.sqrt(v)
    r = pi * dens(big + s2) / ((1 - pi) * dens(small + s2) + pi * dens(big + s2))
    w = (1 - r) * small / (small + s2) + r * big / (big + s2)
    np.testing.assert_allclose(out.weight[0], w, rtol=1e-12)
    np.testing.assert_allclose(out.baseline[0], 0.2 + w * 0.8, rtol=1e-12)


def test_mix_tau2_big_below_tau2_is_rejected():
    with pytest.raises(ValueError, match=r"v05_eb_mix: tau2_big == 0.01 < tau2 == 0.1; the wrong priors' error "
                                         r"variance tau2_big must be >= the good priors' tau2"):
        compute("v05_eb_mix", [1.0, 0.0, 1.0, 1.0], list("aabb"), prior=[0.5] * 4, tau2=0.1, tau2_big=0.01)


def test_mix_trusts_the_means_when_every_informative_group_is_all_equal():
    """sigma2 = 0: the means count as exact (w = 1), as in v05_eb, whatever the priors."""
    rewards, group, prior = [1.0, 1.0, 0.0, 0.0, 1.0], ["a", "a", "b", "b", "s"], [0.3, 0.3, 0.6, 0.6, 0.1]
    out = compute("v05_eb_mix", rewards, group, prior=prior)
    np.testing.assert_array_equal(out.weight, 1.0)
    np.testing.assert_array_equal(out.weight, compute("v05_eb", rewards, group, prior=prior).weight)
    np.testing.assert_array_equal(out.baseline, rewards)


@pytest.mark.parametrize("option, bad, match", [
    ("pi", 1.5, r"v05_eb_mix: pi == 1.5, must be a finite number >= 0 and <= 1 \(pi is the share"),
    ("pi", -0.1, r"v05_eb_mix: pi == -0.1"),
    ("tau2_big", float("inf"), r"v05_eb_mix: tau2_big == inf, must be a finite number >= 0 \(tau2_big is"),
    ("tau2", -1.0, r"v05_eb_mix: tau2 == -1.0, must be a number >= 0 or inf"),
])
def test_mix_options_out_of_range_are_named(option, bad, match):
    from v05.baselines import check_options

    with pytest.raises(ValueError, match=match):
        check_options("v05_eb_mix", {option: bad})
