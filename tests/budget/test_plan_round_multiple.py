"""RolloutPlan's ``round_multiple``: every top-up round asks for a multiple of it in all (a trainer splitting the
round evenly over processes), rounded up with blocks for the prompts that still want more, else down."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v05.budget import OslaConfig, RolloutPlan
from v05.budget.rule import BatchState, gains, wants

from v05_testing.osla import bernoulli_table


def first_round(plan: RolloutPlan, rewards_per_prompt) -> None:
    round_ = plan.request()
    for j, n in round_:
        plan.record(j, rewards_per_prompt[j][:n])


def test_an_odd_round_is_rounded_up_with_the_largest_gains_first():
    cfg = OslaConfig(k_init=4, k_max=16, max_rounds=None)
    # prompts 0-2: the prior is clearly wrong (each wants one block); prompt 1 the most (0.0 vs all correct)
    prior, rewards = [0.2, 0.0, 0.25, 0.5], [[1.0] * 4, [1.0] * 4, [1.0] * 4, [1.0, 0.0, 1.0, 0.0]]
    plain = RolloutPlan(prior, cfg, block=4)
    first_round(plain, rewards)
    assert dict(plain.request()) == {0: 4, 1: 4, 2: 4}
    even = RolloutPlan(prior, cfg, block=4, round_multiple=8)
    first_round(even, rewards)
    assert dict(even.request()) == {0: 4, 1: 8, 2: 4}


def test_a_round_that_cannot_grow_is_rounded_down_from_the_smallest_gains():
    cfg = OslaConfig(k_init=4, k_max=8, max_rounds=None)  # one block each: no room to round up
    prior, rewards = [0.2, 0.0, 0.25], [[1.0] * 4] * 3
    plan = RolloutPlan(prior, cfg, block=4, round_multiple=8)
    first_round(plan, rewards)
    assert dict(plan.request()) == {0: 4, 1: 4}  # prompt 2 (prior 0.25: the smallest gain) is dropped
    budgeted = RolloutPlan(prior, OslaConfig(k_init=4, k_max=16), budget=12 + 12, block=4, round_multiple=8)
    first_round(budgeted, rewards)
    assert budgeted.request().rollouts == 8  # 12 left would allow 3 blocks; the round holds 2


def test_round_multiple_is_checked_and_combined_with_the_block():
    assert RolloutPlan([0.5], block=4, round_multiple=6).round_multiple == 12
    with pytest.raises(ValueError, match="round_multiple == 0, must be >= 1"):
        RolloutPlan([0.5], round_multiple=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), m=st.integers(1, 8), blocks=st.integers(1, 4), block=st.sampled_from([1, 2, 4]),
       factor=st.sampled_from([2, 3, 4]), max_rounds=st.one_of(st.none(), st.integers(1, 3)))
def test_every_top_up_round_is_a_multiple_and_goes_to_prompts_that_want_more(data, m, blocks, block, factor, max_rounds):
    cfg = OslaConfig(k_init=4, k_max=4 + blocks * block, max_rounds=max_rounds)
    prior = data.draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    truth = data.draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    budget = data.draw(st.one_of(st.none(), st.integers(m * 4, m * cfg.k_max + 3)))
    table = bernoulli_table(truth, length=cfg.k_max, seed=data.draw(st.integers(0, 2**16)))
    plan = RolloutPlan(prior, cfg, budget, block=block, round_multiple=factor)
    drawn = np.zeros(m, dtype=int)
    while round_ := plan.request():
        if round_.number > 0:
            assert round_.rollouts % plan.round_multiple == 0 and (round_.n % block == 0).all()
            # the state the round was decided from: what was recorded before it
            wanting = wants(gains(BatchState(plan.means, plan.counts, np.asarray(prior)), cfg), plan.counts, cfg)
            assert wanting[round_.index].all()
        for j, n in round_:
            plan.record(j, table[j][drawn[j]:drawn[j] + n])
            drawn[j] += n
    alloc = plan.result()
    assert (alloc.counts <= cfg.k_max).all() and (budget is None or alloc.counts.sum() <= budget)
