"""OSLA stopping rule and the round-based allocator (``docs/method.md`` sections 4 and 5), against hand loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from v05.budget import DEFAULT_MAX_ROUNDS, OslaConfig, allocate, estimated_mse, expected_gain, wants_more
from v05_testing.osla import FakeGenerate, bernoulli_table, hand_d2, hand_gain, hand_mse, hand_s2, hand_wants_more


def stopping_k(v, prior, cfg, prior_var=None):
    k = cfg.k_init
    while wants_more(v, k, prior, cfg, prior_var=prior_var):
        k += 1
    return k


# -- OslaConfig -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"k_init": 4, "k_max": 3}, ValueError, r"k_max \(3\) must be >= k_init \(4\)"),
    ({"k_init": 0}, ValueError, r"k_init == 0, must be >= 1"),
    ({"k_max": -2}, ValueError, r"k_max == -2, must be >= 1"),
    ({"per_round": 0}, ValueError, r"per_round == 0, must be >= 1"),
    ({"k_init": 4.0}, TypeError, r"k_init must be an int; got float"),
    ({"k_max": True}, TypeError, r"k_max must be an int; got bool"),
    ({"cost": -0.1}, ValueError, r"cost == -0.1, must be a finite number >= 0"),
    ({"cost": float("nan")}, ValueError, r"cost == nan"),
    ({"cost": float("inf")}, ValueError, r"cost == inf"),
    ({"variance": "exact"}, ValueError, r"variance='exact'; expected one of \('worst', 'bernoulli'\)"),
])
def test_config_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        OslaConfig(**kwargs)


def test_config_defaults_are_the_papers():
    cfg = OslaConfig()
    assert (cfg.k_init, cfg.k_max, cfg.cost, cfg.variance, cfg.per_round) == (4, 16, 0.0039, "worst", 1)
    OslaConfig(k_init=5, k_max=5, cost=0.0)  # equal bounds and zero cost are valid


# -- expected_gain / wants_more against the hand loop ---------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 20), hits=st.integers(0, 20), prior=st.floats(0, 1),
    prior_var=st.one_of(st.none(), st.floats(0, 1)), variance=st.sampled_from(["worst", "bernoulli"]),
    cost=st.sampled_from([0.0039, 0.001, 0.02, 0.0]),
)
@example(k=8, hits=0, prior=0.0, prior_var=1.080475905763803e-133, variance="worst", cost=0.0)  # rounding at 1e-149
def test_gain_and_decision_match_the_hand_loop(k, hits, prior, prior_var, variance, cost):
    v = min(hits, k) / k
    cfg = OslaConfig(k_init=1, k_max=16, cost=cost, variance=variance)
    gain = float(expected_gain(v, k, prior, prior_var=prior_var, variance=variance))
    want = hand_gain(v, k, prior, prior_var, variance)
    mse_now = float(estimated_mse(v, k, prior, prior_var=prior_var, variance=variance))
    assert gain >= -1e-12 * mse_now - 1e-300  # one more rollout never hurts (up to rounding at the MSE's scale)
    assert math.isclose(gain, want, rel_tol=1e-12, abs_tol=1e-15)
    d2 = hand_d2(v, k, prior, prior_var, variance)
    assert math.isclose(mse_now, hand_mse(d2, hand_s2(v, k, variance)), rel_tol=1e-12, abs_tol=1e-15)
    if abs(4.0 * want - cost) > 1e-12:  # away from the tie
        assert bool(wants_more(v, k, prior, cfg, prior_var=prior_var)) == hand_wants_more(v, k, prior, cfg, prior_var)


def test_wants_more_is_vectorised():
    cfg = OslaConfig()
    v = np.array([1.0, 0.5, 1.0, 1.0])
    k = np.array([4, 4, 16, 15])
    prior = np.array([0.0, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(wants_more(v, k, prior, cfg), [True, False, False, True])


def test_clearly_wrong_prior_stops_at_16_even_without_a_cap():
    cfg = OslaConfig(k_init=4, k_max=1000, cost=0.0039)
    # D2 -> very large: MSE(k) -> s2_k, so 4 * gain -> 1/(k (k+1)), first below 0.0039 at k = 16
    assert stopping_k(0.5, 0.5, cfg, prior_var=1e12) == 16
    assert 1 / (15 * 16) > 0.0039 > 1 / (16 * 17)
    # the most wrong prior the unit scale allows (v = 1, V = 0) also stops at 16
    assert stopping_k(1.0, 0.0, cfg) == 16
    assert stopping_k(0.0, 1.0, cfg) == 16


@pytest.mark.parametrize("variance", ["worst", "bernoulli"])
@pytest.mark.parametrize("v", [0.0, 0.25, 0.5, 1.0])
def test_perfect_prior_stops_at_k_init(variance, v):
    cfg = OslaConfig(variance=variance)
    assert stopping_k(v, v, cfg) == cfg.k_init
    assert float(expected_gain(v, 4, v, variance=variance)) == 0.0


def test_moderately_wrong_prior_stops_in_between():
    cfg = OslaConfig(k_max=1000)
    k = stopping_k(1.0, 0.55, cfg)  # D2 = 0.2025 - 1/(4k)
    assert 4 < k < 16
    assert not hand_wants_more(1.0, k, 0.55, cfg) and hand_wants_more(1.0, k - 1, 0.55, cfg)


# -- allocate ---------------------------------------------------------------------------------------------


def check_alignment(alloc, gen, cfg, m):
    assert len(gen.calls) == alloc.rounds
    assert alloc.rounds == alloc.round.max() + 1
    for r, (idx, n, out) in enumerate(gen.calls):
        sel = alloc.round == r
        np.testing.assert_array_equal(alloc.rewards[sel], out)
        np.testing.assert_array_equal(alloc.group[sel], np.repeat(idx, n))
    assert (alloc.counts >= cfg.k_init).all() and (alloc.counts <= cfg.k_max).all()
    np.testing.assert_array_equal(np.bincount(alloc.group, minlength=m), alloc.counts)
    np.testing.assert_array_equal(gen.calls[0][0], np.arange(m))  # round 0: every prompt...
    np.testing.assert_array_equal(gen.calls[0][1], cfg.k_init)  # ...gets k_init
    for j in range(m):  # each prompt's rewards, in order, are what generate produced for it
        np.testing.assert_array_equal(alloc.rewards[alloc.group == j], gen.table[j][: alloc.counts[j]])


def test_allocate_aligns_rewards_group_and_round_with_generate():
    m = 5
    # distinctive values: reward of rollout t of prompt j is unique, so any misalignment shows
    table = [[((j * 37 + t * 11) % 101) / 100 for t in range(32)] for j in range(m)]
    gen = FakeGenerate(table)
    cfg = OslaConfig()
    alloc = allocate(gen, prior=[0.0, 0.5, 1.0, 0.2, 0.9], config=cfg)
    check_alignment(alloc, gen, cfg, m)
    assert alloc.rounds > 1


def test_allocate_follows_osla_per_prompt():
    truth = [0.5, 1.0, 0.0, 1.0]
    table = [[1.0, 0.0] * 16, [1.0] * 32, [0.0] * 32, [1.0] * 32]
    prior = [0.5, 1.0, 1.0, 0.0]  # right, right, wrong, wrong
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=prior, config=OslaConfig(max_rounds=None))
    np.testing.assert_array_equal(alloc.counts, [4, 4, 16, 16])
    # one generation call per round: round 0, then 12 top-up rounds for the two wrong priors
    assert alloc.rounds == 13 and len(gen.calls) == 13
    for idx, n, _ in gen.calls[1:]:
        np.testing.assert_array_equal(idx, [2, 3])
        np.testing.assert_array_equal(n, [1, 1])
    assert len(truth) == len(table)


def test_the_default_caps_top_ups_at_two_rounds_with_the_same_counts():
    """``OslaConfig()`` caps at DEFAULT_MAX_ROUNDS = 2: the wrong priors get their 12 top-ups in 2 rounds."""
    table = [[1.0, 0.0] * 16, [1.0] * 32, [0.0] * 32, [1.0] * 32]
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=[0.5, 1.0, 1.0, 0.0])
    assert OslaConfig().max_rounds == DEFAULT_MAX_ROUNDS == 2
    np.testing.assert_array_equal(alloc.counts, [4, 4, 16, 16])
    assert alloc.rounds == 3 and len(gen.calls) == 3


def test_each_prompt_stops_where_the_hand_rule_says():
    table = bernoulli_table([0.3, 0.7, 0.9, 0.1, 0.5, 0.6], seed=3)
    prior = [0.5, 0.1, 0.5, 0.4, 0.45, 0.6]
    cfg = OslaConfig(max_rounds=None, k_max=24, cost=0.002)
    alloc = allocate(FakeGenerate(table), prior=prior, config=cfg)
    for j, k in enumerate(alloc.counts):
        rewards = table[j]
        for kk in range(cfg.k_init, k):  # wanted more at every k before the stop
            assert hand_wants_more(sum(rewards[:kk]) / kk, kk, prior[j], cfg)
        assert not hand_wants_more(sum(rewards[:k]) / k, k, prior[j], cfg)


def test_budget_is_spent_on_the_largest_gains_first():
    # every prompt is all-correct; the further its prior from 1, the larger its gain
    table = [[1.0] * 32 for _ in range(4)]
    prior = [0.6, 0.0, 0.8, 0.3]  # gains order: 1 > 3 > 0; prompt 2 (D2 = 0) wants nothing
    gen = FakeGenerate(table)
    uncapped = OslaConfig(max_rounds=None)
    alloc = allocate(gen, prior=prior, budget=16 + 2, config=uncapped)
    np.testing.assert_array_equal(alloc.counts, [4, 5, 4, 5])
    assert len(alloc.rewards) == 18
    alloc = allocate(FakeGenerate(table), prior=prior, budget=16 + 1, config=uncapped)
    np.testing.assert_array_equal(alloc.counts, [4, 5, 4, 4])


@pytest.mark.parametrize("extra", [0, 1, 5, 17, 30])
def test_global_budget_is_respected_exactly_and_greedily(extra):
    m = 6
    table = bernoulli_table([0.9, 0.2, 0.95, 0.5, 0.05, 0.7], seed=1)
    prior = [0.1, 0.9, 0.3, 0.5, 0.6, 0.0]
    cfg = OslaConfig()
    unbounded = allocate(FakeGenerate(table), prior=prior, config=cfg)
    budget = m * cfg.k_init + extra
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=prior, config=cfg, budget=budget)
    check_alignment(alloc, gen, cfg, m)
    assert len(alloc.rewards) == alloc.counts.sum() == min(budget, unbounded.counts.sum())
    # replay every round: the prompts served had gains >= every prompt that wanted more and was not served
    counts = np.full(m, cfg.k_init)
    for _, (idx, n, _) in enumerate(gen.calls[1:], start=1):
        means = [sum(table[j][: counts[j]]) / counts[j] for j in range(m)]
        gains = np.array([hand_gain(means[j], counts[j], prior[j]) for j in range(m)])
        wanting = [j for j in range(m) if hand_wants_more(means[j], counts[j], prior[j], cfg)]
        unserved = sorted(set(wanting) - set(idx.tolist()))
        assert set(idx.tolist()) <= set(wanting)
        if unserved:
            assert gains[idx].min() >= gains[unserved].max() - 1e-15
        counts[idx] += n


def test_budget_is_spent_to_the_last_rollout_with_several_per_round():
    # two clearly wrong priors want more; 3 rollouts are left for 2 prompts x 2 per round
    table = [[1.0] * 32 for _ in range(2)]
    alloc = allocate(FakeGenerate(table), prior=[0.0, 0.1], config=OslaConfig(max_rounds=None, per_round=2), budget=11)
    assert alloc.counts.sum() == 11
    np.testing.assert_array_equal(alloc.counts, [6, 5])  # the larger gain (prior 0.0) gets its full share


def test_budget_below_k_init_times_prompts_raises():
    with pytest.raises(ValueError, match=r"budget \(11\) is below k_init x prompts \(4 x 3 = 12\)"):
        allocate(FakeGenerate([[1.0] * 16] * 3), prior=[0.5] * 3, budget=11)
    with pytest.raises(TypeError, match=r"budget must be an int"):
        allocate(FakeGenerate([[1.0] * 16] * 3), prior=[0.5] * 3, budget=20.0)
    alloc = allocate(FakeGenerate([[1.0] * 16] * 3), prior=[0.0] * 3, budget=12)  # exactly k_init x M
    np.testing.assert_array_equal(alloc.counts, 4)
    assert alloc.rounds == 1


@pytest.mark.parametrize("round_no", [0, 1, 3])
def test_generate_returning_the_wrong_length_raises_naming_the_round(round_no):
    gen = FakeGenerate([[1.0] * 32, [0.0] * 32], corrupt_round=round_no, corruption=lambda out: out[:-1])
    with pytest.raises(ValueError, match=rf"generate returned \d+ rewards in round {round_no}; it was asked for \d+"):
        allocate(gen, prior=[0.0, 1.0], config=OslaConfig(max_rounds=None))


@pytest.mark.parametrize("round_no", [0, 2])
@pytest.mark.parametrize("bad", [np.nan, np.inf, 2.0, -1.0])
def test_generate_returning_bad_rewards_raises_naming_the_round(round_no, bad):
    def corrupt(out):
        out = out.copy()
        out[0] = bad
        return out

    gen = FakeGenerate([[1.0] * 32, [0.0] * 32], corrupt_round=round_no, corruption=corrupt)
    with pytest.raises(ValueError, match=rf"round {round_no} rewards\[0\] = .*round {round_no} rewards must be finite"):
        allocate(gen, prior=[0.0, 1.0])


def test_generate_returning_2d_raises_naming_the_round():
    gen = FakeGenerate([[1.0] * 32], corrupt_round=1, corruption=lambda out: out.reshape(1, -1))
    with pytest.raises(ValueError, match=r"generate\(\.\.\.\) output in round 1 must be 1-D"):
        allocate(gen, prior=[0.0])


@pytest.mark.parametrize("prior, prior_var, match", [
    ([0.5, 1.5], None, r"prior\[1\] = .*1\.5"),
    ([0.5, np.nan], None, r"prior\[1\] = .*nan"),
    ([], None, r"prior is empty"),
    ([[0.5, 0.5]], None, r"prior must be 1-D"),
    ([0.5, 0.5], [0.1], r"prior_var has 1 entries for 2 prompts"),
    ([0.5, 0.5], [0.1, -0.1], r"prior_var\[1\] = .*-0\.1"),
])
def test_allocate_input_errors(prior, prior_var, match):
    with pytest.raises(ValueError, match=match):
        allocate(FakeGenerate([[1.0] * 16] * 2), prior=prior, prior_var=prior_var)


def test_pm1_scale_gives_the_same_allocation_as_binary():
    table = bernoulli_table([0.3, 0.8, 0.5, 0.95, 0.1], seed=7)
    prior = [0.3, 0.2, 0.9, 0.5, 0.1]
    binary = allocate(FakeGenerate(table), prior=prior)
    pm1_table = [[2.0 * x - 1.0 for x in row] for row in table]
    gen = FakeGenerate(pm1_table)
    pm1 = allocate(gen, prior=prior, scale="pm1")
    np.testing.assert_array_equal(pm1.counts, binary.counts)
    np.testing.assert_array_equal(pm1.rewards, 2.0 * binary.rewards - 1.0)
    assert set(np.unique(pm1.rewards)) <= {-1.0, 1.0}
    check_alignment(pm1, gen, OslaConfig(), 5)
    with pytest.raises(ValueError, match=r"round 0 rewards\[\d+\] = .*-1\.0.*\[0, 1\]"):
        allocate(FakeGenerate(pm1_table), prior=prior)  # +-1 rewards declared as binary


def test_prior_var_floors_d2_and_buys_more_rollouts():
    table = [[1.0, 0.0] * 16, [1.0, 0.0] * 16]  # mean exactly 1/2 after every even k
    alloc = allocate(FakeGenerate(table), prior=[0.5, 0.5], prior_var=[0.0, 0.5])
    np.testing.assert_array_equal(alloc.counts, [4, 16])
    # a moderate prior variance stops in between, where the hand rule says (D2 = 0.05: k = 11)
    middle = allocate(FakeGenerate(table), prior=[0.5, 0.5], prior_var=[0.0, 0.05])
    assert middle.counts[1] == stopping_k(0.5, 0.5, OslaConfig(), prior_var=0.05) == 11
    # and a tiny one is not worth a rollout
    tiny = allocate(FakeGenerate(table), prior=[0.5, 0.5], prior_var=[0.0, 0.003])
    np.testing.assert_array_equal(tiny.counts, [4, 4])


def test_per_round_caps_at_k_max():
    cfg = OslaConfig(max_rounds=None, k_init=4, k_max=11, per_round=3)
    gen = FakeGenerate([[1.0] * 32, [0.0] * 32])
    alloc = allocate(gen, prior=[0.0, 0.0], config=cfg)
    np.testing.assert_array_equal(alloc.counts, [11, 4])
    assert [n.tolist() for _, n, _ in gen.calls[1:]] == [[3], [3], [1]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    m=st.integers(1, 8),
    k_init=st.integers(1, 6),
    k_span=st.integers(0, 14),
    per_round=st.integers(1, 4),
    variance=st.sampled_from(["worst", "bernoulli"]),
    cost=st.sampled_from([0.0039, 0.001, 0.0]),
    scale=st.sampled_from(["binary", "pm1"]),
)
def test_allocate_never_exceeds_k_max_or_budget(data, m, k_init, k_span, per_round, variance, cost, scale):
    cfg = OslaConfig(k_init=k_init, k_max=k_init + k_span, cost=cost, variance=variance, per_round=per_round)
    priors = data.draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    truths = data.draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    prior_var = data.draw(st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=m, max_size=m)))
    budget = data.draw(st.one_of(st.none(), st.integers(m * k_init, m * (k_init + k_span) + 5)))
    table = bernoulli_table(truths, length=cfg.k_max, seed=data.draw(st.integers(0, 2**16)))
    if scale == "pm1":
        table = [[2.0 * x - 1.0 for x in row] for row in table]
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=priors, prior_var=prior_var, config=cfg, budget=budget, scale=scale)
    assert (alloc.counts >= k_init).all() and (alloc.counts <= cfg.k_max).all()
    if budget is not None:
        assert alloc.counts.sum() <= budget
    assert len(alloc.rewards) == len(alloc.group) == len(alloc.round) == alloc.counts.sum()
    check_alignment(alloc, gen, cfg, m)


def test_prompt_ids_are_what_generate_receives_and_group_holds_positions():
    names = np.array(["gsm8k/41", "math/7", "aime/3"])
    tables = {"gsm8k/41": [1.0] * 32, "math/7": [0.0, 1.0] * 16, "aime/3": [0.0] * 32}
    seen, drawn = [], {k: 0 for k in tables}

    def generate(prompts, n):
        seen.append(list(prompts))
        out = []
        for p, m in zip(prompts.tolist(), n.tolist()):
            out += tables[p][drawn[p]: drawn[p] + m]
            drawn[p] += m
        return np.array(out)

    alloc = allocate(generate, prior=[0.0, 0.5, 0.0], prompt_ids=names)
    assert seen[0] == names.tolist()
    assert all(set(s) <= set(names.tolist()) for s in seen)
    np.testing.assert_array_equal(alloc.counts, [16, 4, 4])
    assert set(alloc.group.tolist()) == {0, 1, 2}  # positions, not ids
    for j, name in enumerate(names):
        np.testing.assert_array_equal(alloc.rewards[alloc.group == j], tables[name][: alloc.counts[j]])
    with pytest.raises(ValueError, match=r"prompt_ids has 2 entries for 3 prompts"):
        allocate(generate, prior=[0.0, 0.5, 0.0], prompt_ids=names[:2])


# -- rule="eb": Beta posterior variance under the batch's fitted rho --------------------------------------


def hand_eb_gain(total, k, prior, rho):
    m = 1 / rho - 1
    a, b = m * prior + total + 0.5, m * (1 - prior) + (k - total) + 0.5
    n = a + b
    var_now = a * b / (n * n * (n + 1))
    # expected posterior variance after one more Bernoulli draw with P(success) = a / n
    p = a / n
    var_hit = (a + 1) * b / ((n + 1) ** 2 * (n + 2))
    var_miss = a * (b + 1) / ((n + 1) ** 2 * (n + 2))
    return var_now - (p * var_hit + (1 - p) * var_miss)


@pytest.mark.parametrize("total, k, prior, rho", [(2, 4, 0.5, 0.3), (0, 4, 0.9, 1.0), (7, 9, 0.1, 0.05), (4, 4, 1.0, 0.6)])
def test_eb_gain_is_the_preposterior_variance_reduction(total, k, prior, rho):
    from v05.budget import eb_gain

    assert eb_gain(total / k, k, prior, rho) == pytest.approx(hand_eb_gain(total, k, prior, rho), rel=1e-12)
    assert eb_gain(total / k, k, prior, 0.0) == 0.0  # a perfect prior: nothing to learn


def test_eb_rule_needs_two_initial_rollouts():
    with pytest.raises(ValueError, match=r"rule='eb' fits rho from the first round: k_init \(1\) must be >= 2"):
        OslaConfig(rule="eb", k_init=1)
    with pytest.raises(ValueError, match="rule='nope'"):
        OslaConfig(rule="nope")


def test_eb_rule_trusts_a_batch_of_good_priors_and_spends_on_uncertain_prompts_otherwise():
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.05, 0.95, 64)
    table = bernoulli_table(truth, seed=4)
    cfg = OslaConfig(rule="eb")
    good = allocate(FakeGenerate(table), prior=truth, config=cfg)
    assert good.counts.mean() < 4.5
    useless = allocate(FakeGenerate(table), prior=rng.uniform(0, 1, 64), config=cfg)
    assert useless.counts.mean() > 8
    first4 = np.array([sum(row[:4]) for row in table])
    mixed, pure = (first4 % 4 != 0), (first4 % 4 == 0)
    assert useless.counts[mixed].mean() > useless.counts[pure].mean()
