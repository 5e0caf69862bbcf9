"""Every rollout rule through the planner's callers as they are: ``allocate`` (the engine's loop shape) and
verl's ``TopUpScheduler`` (records by request uid, forfeits short requests), with no change to either."""

import numpy as np
import pytest

from v05.budget import RolloutPlan, allocate, make_rule, rule_names
from v05.integrations.verl.topup import TopUpScheduler

PRIOR = [0.05, 0.5, 0.9, 0.0]
TRUTH = np.array([0.2, 0.5, 0.8, 0.0])


def generator(seed):
    rng = np.random.default_rng(seed)
    return lambda idx, n: (rng.random(n.sum()) < np.repeat(TRUTH[idx], n)).astype(float)


@pytest.mark.parametrize("name", rule_names())
def test_allocate_runs_every_rule(name):
    alloc = allocate(generator(0), PRIOR, config=make_rule(name), budget=48)
    plan = RolloutPlan(PRIOR, make_rule(name), 48)
    gen = generator(0)
    while round_ := plan.request():
        plan.record(np.repeat(round_.index, round_.n), gen(round_.index, round_.n))
    assert alloc.counts.tolist() == plan.result().counts.tolist()  # the same plan, whichever loop drives it
    assert alloc.counts.sum() <= 48 and len(alloc.rewards) == alloc.counts.sum()


@pytest.mark.parametrize("name", rule_names())
def test_verl_scheduler_runs_every_rule(name):
    uids = iter(f"u{i}" for i in range(1000))
    s = TopUpScheduler(["a", "b", "c", "d"], PRIOR, make_rule(name), budget=48, make_uid=uids.__next__)
    rng = np.random.default_rng(1)
    waiting = [(root, n) for root, n in s.first_counts.items()]
    while waiting:
        for uid, n in waiting:
            truth = TRUTH["abcd".index(s.parent[uid])]
            s.record(uid, (rng.random(max(n - (uid == "u0"), 0)) < truth).astype(float))  # u0 comes back short
        waiting = [(f.uid, f.n) for f in s.next_round()]
    assert s.done and sum(s.counts().values()) <= 48
