"""The rollout planner driven from outside (inverted control), its round cap, blocks, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v05.baselines import Prior
from v05.budget import OslaConfig, RolloutPlan, allocate, expected_gain, projected_extra
from v05.budget.rule import BatchState

from v05_testing.osla import FakeGenerate, bernoulli_table, hand_gain


def drive(plan: RolloutPlan, table, *, shuffle_seed=None):
    """Run a plan to the end, recording each round prompt by prompt (in a shuffled order if asked)."""
    drawn = [0] * len(table)
    rng = np.random.default_rng(shuffle_seed)
    rounds = []
    while round_ := plan.request():
        rounds.append(list(round_))
        pairs = list(round_)
        if shuffle_seed is not None:
            pairs = [pairs[i] for i in rng.permutation(len(pairs))]
        for j, n in pairs:
            plan.record(j, table[j][drawn[j]: drawn[j] + n])
            drawn[j] += n
    return plan.result(), rounds


def test_driving_the_plan_prompt_by_prompt_in_any_order_matches_allocate():
    table = bernoulli_table([0.3, 0.7, 0.9, 0.1, 0.5, 0.6, 0.95, 0.02], seed=5)
    prior = [0.5, 0.1, 0.5, 0.4, 0.45, 0.6, 0.2, 0.9]
    for cfg in (OslaConfig(), OslaConfig(rule="eb"), OslaConfig(per_round=2, variance="bernoulli")):
        alloc = allocate(FakeGenerate(table), prior=prior, config=cfg)
        driven, _ = drive(RolloutPlan(prior, cfg), table, shuffle_seed=1)
        np.testing.assert_array_equal(driven.counts, alloc.counts)
        assert driven.rounds == alloc.rounds
        for j in range(len(prior)):  # same rewards per prompt, in order
            np.testing.assert_array_equal(driven.rewards[driven.group == j], alloc.rewards[alloc.group == j])
            np.testing.assert_array_equal(driven.round[driven.group == j], alloc.round[alloc.group == j])


def test_result_is_in_one_id_space_and_in_recording_order():
    plan = RolloutPlan([0.0, 1.0])
    first = plan.request()
    plan.record(1, [1.0, 1.0])
    plan.record(0, [1.0, 1.0, 1.0, 1.0])
    plan.record(1, [1.0, 1.0])
    res = plan.result()
    np.testing.assert_array_equal(res.group, [1, 1, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(res.counts, [4, 4])
    assert first.number == 0 and res.rounds == 1


def test_a_round_must_be_complete_before_the_next_or_the_result():
    plan = RolloutPlan([0.0, 0.5, 1.0])
    plan.request()
    plan.record(0, [1.0] * 4)
    with pytest.raises(RuntimeError, match=r"round 0 still waits for 8 reward\(s\) of prompt\(s\) \[1, 2\]"):
        plan.request()
    with pytest.raises(RuntimeError, match=r"cannot read the result: round 0"):
        plan.result()


@pytest.mark.parametrize("index, rewards, exc, match", [
    (0, [1.0] * 5, ValueError, r"prompt 0 got 5 reward\(s\) in round 0 but was asked for 4 more"),
    (3, [1.0], ValueError, r"prompt_index must hold prompt positions in \[0, 2\); got \[3\]"),
    ([0, 1], [1.0], ValueError, r"prompt_index has 2 entries for 1 rewards"),
    (0, [np.nan], ValueError, r"round 0 rewards\[0\] = nan"),
    (0, [2.0], ValueError, r"round 0 rewards\[0\] = 2\.0: .*\[0, 1\]"),
])
def test_record_errors_name_the_problem(index, rewards, exc, match):
    plan = RolloutPlan([0.5, 0.5])
    plan.request()
    with pytest.raises(exc, match=match):
        plan.record(index, rewards)


def test_a_finished_plan_keeps_answering_empty():
    plan = RolloutPlan([0.5])
    assert list(plan.request()) == [(0, 4)]
    plan.record(0, [1.0, 0.0, 1.0, 0.0])
    assert not plan.request() and plan.done
    assert not plan.request() and len(plan.request()) == 0
    assert plan.result().rounds == 1


# -- the round cap ---------------------------------------------------------------------------------------


def hand_projected_extra(v, k, prior, cfg):
    """Paper rule run forward with D2 estimated at k and held fixed, the mean held at v."""
    extra = 0
    while k + extra < cfg.k_max and 4 * float(expected_gain(v, k, prior, k_next=k + extra)) > cfg.cost:
        extra += 1
    return extra


@settings(max_examples=150, deadline=None)
@given(k=st.integers(1, 12), hits=st.integers(0, 12), prior=st.floats(0, 1), cost=st.sampled_from([0.0039, 0.001, 0.02]))
def test_projected_extra_matches_the_hand_loop(k, hits, prior, cost):
    v = min(hits, k) / k
    cfg = OslaConfig(k_init=1, k_max=24, cost=cost)
    got = projected_extra(BatchState(np.array([v]), np.array([k]), np.array([prior])), cfg)
    assert int(got[0]) == hand_projected_extra(v, k, prior, cfg)
    if got[0] == 0:  # a prompt with no projected need is one the rule stops now
        assert not 4 * hand_gain(v, k, prior) > cost or k >= cfg.k_max


def test_one_top_up_round_gives_each_prompt_its_projected_need():
    table = [[1.0] * 32, [1.0, 0.0] * 16, [0.0] * 32]
    prior = [0.0, 0.5, 0.6]  # clearly wrong, right, moderately wrong
    capped = allocate(FakeGenerate(table), prior=prior, config=OslaConfig(max_rounds=1))
    assert capped.rounds == 2
    state = BatchState(np.array([1.0, 0.5, 0.0]), np.array([4, 4, 4]), np.array(prior))
    np.testing.assert_array_equal(capped.counts, 4 + projected_extra(state, OslaConfig()))
    assert capped.counts[0] == 16 and capped.counts[1] == 4 and 4 < capped.counts[2] < 16


@pytest.mark.parametrize("max_rounds", [0, 1, 2, 3, 5])
def test_max_rounds_caps_the_rounds_and_spreads_the_need(max_rounds):
    table = bernoulli_table([0.9, 0.2, 0.95, 0.5, 0.05, 0.7, 0.4, 0.8], seed=2)
    prior = [0.1, 0.9, 0.3, 0.5, 0.6, 0.0, 0.4, 0.8]
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=prior, config=OslaConfig(max_rounds=max_rounds))
    assert alloc.rounds == len(gen.calls) <= 1 + max_rounds
    free = allocate(FakeGenerate(table), prior=prior)
    if max_rounds == 0:
        np.testing.assert_array_equal(alloc.counts, 4)
    else:  # fewer rounds buy about as many rollouts for the prompts that want them
        assert set(np.flatnonzero(alloc.counts > 4)) == set(np.flatnonzero(free.counts > 4))


def test_no_cap_is_the_paper_rule_round_by_round():
    table = [[1.0] * 32, [0.0] * 32]
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=[0.0, 0.0])
    assert alloc.rounds == 13 and [n.tolist() for _, n, _ in gen.calls[1:]] == [[1]] * 12


# -- blocks -----------------------------------------------------------------------------------------------


def test_top_ups_come_in_blocks():
    table = bernoulli_table([0.9, 0.2, 0.95, 0.5, 0.05, 0.7], seed=4)
    prior = [0.1, 0.9, 0.3, 0.5, 0.6, 0.0]
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=prior, block=4, budget=6 * 4 + 10)
    for idx, n, _ in gen.calls[1:]:
        assert (n % 4 == 0).all() and len(idx)
    assert alloc.counts.sum() <= 34 and ((alloc.counts - 4) % 4 == 0).all()
    with pytest.raises(ValueError, match=r"k_max - k_init \(16 - 4\) must be a multiple of block \(5\)"):
        RolloutPlan(prior, block=5)


# -- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config, exc, match", [
    ({"k_max": 8, "cost": 0.01}, None, None),
    ({"k_mx": 8}, ValueError, r"unknown setting\(s\) \['k_mx'\]; OslaConfig settings: \['k_init'"),
    ({"cost": "0.01"}, TypeError, r"cost must be a number; got str '0.01'"),
    ({"k_max": 10**6, "cost": 0.0}, ValueError, r"k_max == 1000000, must be <= 4096"),
    ({"max_rounds": -1}, ValueError, r"max_rounds == -1, must be >= 0"),
    ({"rule": ["paper"]}, TypeError, r"rule must be one of \('paper', 'eb'\); got list \['paper'\]"),
    ({"rule": "pape"}, ValueError, r"rule='pape'; expected one of \('paper', 'eb'\)"),
    ("k_max=8", TypeError, r"config must be an OslaConfig or a dict of its fields; got str"),
])
def test_config_from_a_dict_and_its_errors(config, exc, match):
    if exc is None:
        assert RolloutPlan([0.5], config).config == OslaConfig(k_max=8, cost=0.01)
        return
    with pytest.raises(exc, match=match):
        allocate(FakeGenerate([[1.0] * 16]), prior=[0.5], config=config)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(), m=st.integers(1, 8), k_init=st.integers(2, 6), blocks=st.integers(0, 4),
    block=st.sampled_from([1, 2, 4]), max_rounds=st.one_of(st.none(), st.integers(0, 4)),
    rule=st.sampled_from(["paper", "eb"]), cost=st.sampled_from([0.0039, 0.0]),
)
def test_plan_invariants(data, m, k_init, blocks, block, max_rounds, rule, cost):
    cfg = OslaConfig(k_init=k_init, k_max=k_init + blocks * block, cost=cost, rule=rule, max_rounds=max_rounds)
    prior = data.draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    truth = data.draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    budget = data.draw(st.one_of(st.none(), st.integers(m * k_init, m * cfg.k_max + 3)))
    table = bernoulli_table(truth, length=cfg.k_max, seed=data.draw(st.integers(0, 2**16)))
    gen = FakeGenerate(table)
    alloc = allocate(gen, prior=prior, config=cfg, budget=budget, block=block)
    assert (alloc.counts >= k_init).all() and (alloc.counts <= cfg.k_max).all()
    assert ((alloc.counts - k_init) % block == 0).all()
    assert budget is None or alloc.counts.sum() <= budget
    assert max_rounds is None or alloc.rounds <= 1 + max_rounds
    assert alloc.rounds == len(gen.calls)
    for j in range(m):
        np.testing.assert_array_equal(alloc.rewards[alloc.group == j], table[j][: alloc.counts[j]])


def test_forfeit_lets_a_round_with_a_failed_generation_complete():
    plan = RolloutPlan([0.5, 0.0, 0.2], OslaConfig(k_init=4, k_max=8))
    first = plan.request()
    plan.record(0, [1, 0, 1, 0])
    plan.record(1, [1, 1])                       # two of four came back
    assert plan.forfeit([1, 2]) == 2 + 4         # prompt 2 failed entirely
    assert plan.spent == 6 and first.rollouts == 12
    assert plan.result().counts.tolist() == [4, 2, 0]
    top_up = plan.request()                      # the round is complete
    assert 1 in top_up.index.tolist()            # the contradicted prior still gets its top-up
    assert 2 not in top_up.index.tolist()        # no rollout, no mean: never topped up
    with pytest.raises(ValueError, match="prompt positions"):
        plan.forfeit([3])


@settings(max_examples=25, deadline=None)
@given(prior=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8), data=st.data())
def test_a_prior_plans_as_its_arrays(prior, data):
    var = data.draw(st.lists(st.floats(0.0, 0.1), min_size=len(prior), max_size=len(prior)))
    truth = np.asarray(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(prior), max_size=len(prior))))
    config = OslaConfig(k_init=2, k_max=8)

    def run(**kwargs):
        rng = np.random.default_rng(0)
        return allocate(lambda idx, n: (rng.random(n.sum()) < np.repeat(truth[idx], n)).astype(float),
                        config=config, **kwargs)

    for with_var in (True, False):
        arrays = run(prior=prior, prior_var=var if with_var else None)
        one = run(prior=Prior(prior, var if with_var else None))
        assert arrays.counts.tolist() == one.counts.tolist() and arrays.rewards.tolist() == one.rewards.tolist()
    with pytest.raises(TypeError, match="prior is a Prior, which carries its own variance"):
        RolloutPlan(Prior(prior, var), config, prior_var=var)
    assert RolloutPlan(Prior(prior, var).without_var(), config).prior_var is None
