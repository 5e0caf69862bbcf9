"""The rollout rules behind RolloutPlan (docs/method.md 10): hand-computed cases per rule, the knapsack against
brute force, and properties every rule keeps under the planner (k_max, budget, max_rounds, blocks,
round_multiple, forfeit, determinism)."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v05.baselines import compute
from v05.budget import OslaConfig, RolloutPlan, check_rule_options, make_rule, rule_names, rule_options
from v05.budget.cures import posterior_mean, proportional_counts, weights
from v05.budget.knapsack import knapsack_counts, value


def drive(plan, rewards_of):
    """Run ``plan`` with ``rewards_of(round_number, prompt, n) -> rewards``; the rounds as (index, n) lists."""
    rounds = []
    while round_ := plan.request():
        rounds.append(list(round_))
        for j, n in round_:
            plan.record(j, rewards_of(round_.number, j, n))
    return rounds


def scripted(table):
    """Rewards from ``table[prompt][round]``."""
    return lambda r, j, n: table[j][r][:n]


# -- registry ------------------------------------------------------------------------------------------------


def test_registry_names_and_options():
    assert rule_names() == ["osla", "reinforce_ada", "knapsack", "cures", "dynamic"]
    assert set(rule_options("osla")) == {"k_init", "k_max", "cost", "variance", "per_round", "rule", "max_rounds"}
    assert check_rule_options("knapsack", {"alpha": 1 / 2, "k_init": None}) == {"alpha": 0.5, "k_init": None}


@pytest.mark.parametrize("name, options, error, words", [
    ("knapsak", {}, ValueError, "unknown rollout rule 'knapsak'; known: osla, reinforce_ada"),
    ("knapsack", {"k_mx": 8}, TypeError, "unknown option(s) ['k_mx']"),
    ("knapsack", {"alpha": 1.5}, ValueError, "knapsack: alpha == 1.5"),
    ("reinforce_ada", {"exit": "positive"}, ValueError, "reinforce_ada: exit='positive'"),
    ("dynamic", {"k": 2.5}, TypeError, "dynamic: k must be an int"),
    ("cures", {"max_rounds": -1}, ValueError, "cures: max_rounds == -1"),
    ("osla", {"k_max": "16"}, TypeError, "osla: k_max must be an int"),
    ("cures", {"k_min": 4, "k_max": 3}, ValueError, "k_max (3) must be >= k_min (4)"),
    ("knapsack", {"k_init": 4}, ValueError, "k_init (4) must be <= k_min (2)"),
    ("reinforce_ada", {"k_max": 4}, ValueError, "k_max (4) must be >= round_size (8)"),
    ("knapsack", {"alpha": 1.0}, ValueError, "must be < 1"),
])
def test_bad_options_name_the_field(name, options, error, words):
    with pytest.raises(error, match=None) as info:
        make_rule(name, options)
    assert words in str(info.value)


def test_osla_by_name_plans_as_osla_config():
    config = {"k_init": 2, "k_max": 8, "rule": "eb", "max_rounds": 2}
    rng = np.random.default_rng(3)
    table = rng.random((5, 10, 8)) < 0.4
    by_name = drive(RolloutPlan([0.1, 0.5, 0.9, 0.3, 0.7], make_rule("osla", config)), scripted(table.astype(float)))
    direct = drive(RolloutPlan([0.1, 0.5, 0.9, 0.3, 0.7], OslaConfig(**config)), scripted(table.astype(float)))
    assert by_name == direct


def test_plan_checks_name_the_rule_setting():
    with pytest.raises(ValueError, match=r"budget \(7\) is below k_min x prompts \(2 x 4 = 8\)"):
        RolloutPlan([0.5] * 4, make_rule("knapsack"), budget=7)
    with pytest.raises(ValueError, match=r"round_size - 0 \(8 - 0\) must be a multiple of block \(3\)"):
        RolloutPlan([0.5], make_rule("reinforce_ada"), block=3)
    with pytest.raises(ValueError, match=r"k_max - k \(5 - 4\) must be a multiple of block \(2\)"):
        RolloutPlan([0.5], make_rule("dynamic", {"k_max": 5}), block=2)
    with pytest.raises(ValueError, match=r"k_min - k_init \(4 - 1\) must be a multiple of block \(2\)"):
        RolloutPlan([0.5], make_rule("cures", {"k_min": 4, "k_init": 1}), block=2)


# -- Reinforce-Ada -------------------------------------------------------------------------------------------


def test_reinforce_ada_balanced_retires_prompts_with_both_kinds():
    rule = make_rule("reinforce_ada", {"n": 4, "round_size": 4, "k_max": 12, "max_rounds": 2})
    table = {0: [[1, 1, 0, 0]], 1: [[1, 1, 1, 1], [1, 0, 0, 1]], 2: [[0, 0, 0, 0]] * 3}
    plan = RolloutPlan([0.5] * 3, rule)
    assert drive(plan, scripted(table)) == [[(0, 4), (1, 4), (2, 4)], [(1, 4), (2, 4)], [(2, 4)]]
    alloc = plan.result()
    assert alloc.counts.tolist() == [4, 8, 12]
    keep = rule.update_rows(alloc)
    # prompt 0: all four; prompt 1: its first two positives and first two negatives; prompt 2 (never retired,
    # no positive): its first four negatives
    assert np.flatnonzero(keep[alloc.group == 1]).tolist() == [0, 1, 5, 6]
    assert np.flatnonzero(keep[alloc.group == 2]).tolist() == [0, 1, 2, 3]
    assert keep[alloc.group == 0].all() and keep.sum() == 12
    # the baseline is the mean over the prompt's whole pool (6 positives in 8 for prompt 1)
    base = compute("mean", alloc.rewards, alloc.group).baseline
    assert base[alloc.group == 1][0] == 0.75


def test_reinforce_ada_positive_focused_needs_one_success():
    rule = make_rule("reinforce_ada", {"exit": "positive_focused", "n": 4, "round_size": 4, "max_rounds": 1})
    table = {0: [[0, 0, 0, 1]], 1: [[0, 0, 0, 0], [0, 0, 0, 0]]}
    plan = RolloutPlan([0.5, 0.5], rule)
    assert drive(plan, scripted(table)) == [[(0, 4), (1, 4)], [(1, 4)]]
    keep = rule.update_rows(plan.result())
    assert keep.tolist() == [True] * 4 + [True] * 4 + [False] * 4  # prompt 1 never retired: its first 4


def test_reinforce_ada_unretired_positive_focused_keeps_the_pool_share():
    rule = make_rule("reinforce_ada", {"exit": "positive_focused", "n": 4, "round_size": 4})
    # a retired prompt with 1 positive in 8: aim 2 positives (has 1), negatives fill: 1 + 3
    plan = RolloutPlan([0.5], rule)
    drive(plan, scripted({0: [[0, 0, 0, 0], [0, 0, 1, 0]]}))
    alloc = plan.result()
    assert np.flatnonzero(rule.update_rows(alloc)).tolist() == [0, 1, 2, 6]


def test_reinforce_ada_threshold_reads_unit_scale():
    rule = make_rule("reinforce_ada", {"exit": "positive_focused", "round_size": 2, "n": 2})
    plan = RolloutPlan([0.5], rule, scale="pm1")
    assert drive(plan, scripted({0: [[-1, 1]]})) == [[(0, 2)]]  # +1 is 1 on the unit scale: retired


# -- dynamic sampling -----------------------------------------------------------------------------------------


def test_dynamic_resamples_all_equal_groups_until_they_vary():
    plan = RolloutPlan([0.5, 0.5, 0.5], make_rule("dynamic", {"k": 2, "max_rounds": 2}))
    table = {0: [[1, 0]], 1: [[1, 1], [1, 0]], 2: [[0, 0]] * 3}
    assert drive(plan, scripted(table)) == [[(0, 2), (1, 2), (2, 2)], [(1, 2), (2, 2)], [(2, 2)]]
    alloc = plan.result()
    keep = compute("dapo", alloc.rewards, alloc.group).keep
    assert keep[alloc.group < 2].all() and not keep[alloc.group == 2].any()  # still all-equal: DAPO drops it


# -- Knapsack RL ----------------------------------------------------------------------------------------------


def test_knapsack_value_hand_computed():
    assert value(4, 0.5) == pytest.approx((1 - 1 / 16 - 1 / 16) * 0.5 * 0.25)
    assert value(8, 0.0) == 0 and value(8, 1.0) == 0


def test_knapsack_hand_cases():
    # two equal prompts: one block each (the second block of the first is worth less than the first of the other)
    assert knapsack_counts([0.5, 0.5], 6, k_min=2, fallback=False).tolist() == [3, 3]
    # fallback: p=0.5 needs log(0.1)/log(0.5) = 3.3 -> 3 of the 6 left; the other 3 go to the p=0 prompt
    assert knapsack_counts([0.5, 0.0, 1.0], 12, k_min=2).tolist() == [5, 5, 2]
    # no mixed prompt: the rest goes to the p=0 prompts, evenly
    assert knapsack_counts([0.0, 1.0, 0.0], 12, k_min=2).tolist() == [5, 2, 5]
    # k_max caps, and what nobody can take is not drawn
    assert knapsack_counts([0.5, 0.3], 100, k_min=2, k_max=6, fallback=False).tolist() == [6, 6]
    # blocks of 4 above k_min, within k_min + 4 * ((k_max - k_min) // 4)
    assert knapsack_counts([0.5, 0.2], 14, k_min=2, k_max=12, block=4, fallback=False).tolist() == [6, 6]


def brute_force_value(p, budget, k_min, k_max, block):
    """The best summed value over every allocation (the slow reference)."""
    units = (k_max - k_min) // block
    best = -1.0
    for u in itertools.product(range(units + 1), repeat=len(p)):
        n = k_min + block * np.asarray(u)
        if n.sum() <= budget:
            best = max(best, float(value(n, p).sum()))
    return best


@settings(max_examples=80, deadline=None)
@given(p=st.lists(st.sampled_from([0.0, 0.05, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]), min_size=1, max_size=4),
       k_min=st.integers(1, 3), extra=st.integers(0, 4), block=st.integers(1, 2), spare=st.integers(0, 12))
def test_knapsack_greedy_is_optimal_against_brute_force(p, k_min, extra, block, spare):
    k_max = k_min + extra
    budget = len(p) * k_min + spare
    counts = knapsack_counts(p, budget, k_min=k_min, k_max=k_max, block=block, fallback=False)
    assert counts.sum() <= budget and counts.min() >= k_min and counts.max() <= k_max
    assert float(value(counts, np.asarray(p)).sum()) == pytest.approx(brute_force_value(np.asarray(p), budget, k_min,
                                                                                        k_max, block), abs=1e-12)


def test_knapsack_two_rounds_under_a_fixed_first_group():
    rule = make_rule("knapsack", {"k_min": 2, "k_max": 10, "k_init": 2, "fallback": False})
    plan = RolloutPlan([0.5, 0.9, 0.0], rule, budget=18, round_multiple=4)
    rounds = drive(plan, lambda r, j, n: np.ones(n))
    planned = knapsack_counts([0.5, 0.9, 0.0], 18, k_min=2, k_max=10, fallback=False)
    assert rounds[0] == [(0, 2), (1, 2), (2, 2)]
    assert sum(n for _, n in rounds[1]) % 4 == 0 and plan.spent <= 18
    assert len(rounds) == 2 and (plan.counts <= planned).all()


# -- CurES ----------------------------------------------------------------------------------------------------


def test_cures_posterior_and_weight_hand_computed():
    assert posterior_mean(3, 4) == pytest.approx(4 / 6)
    assert weights(0, 0) == pytest.approx(math.exp(0.5 / 100))  # p = 1/2, t = 1/0.01
    p = 4 / 6
    assert weights(3, 4, tau=2.0) == pytest.approx(math.exp(math.sqrt(p * (1 - p)) / 2.0))


def test_cures_split_hand_cases():
    assert proportional_counts([1, 1, 1], 9, k_min=2, k_max=16).tolist() == [3, 3, 3]
    assert proportional_counts([1, 2, 1], 12, k_min=1, k_max=16).tolist() == [3, 6, 3]
    # the middle prompt is capped at 5: the others share the rest, 3.5 each, and the odd one goes to the first
    assert proportional_counts([1, 2, 1], 12, k_min=1, k_max=5).tolist() == [4, 5, 3]
    assert proportional_counts([1, 5], 100, k_min=2, k_max=9, block=3).tolist() == [8, 8]


def test_cures_split_follows_the_weights_when_sharp():
    # tau = 100, prior worth 4 tries: a = 0.2, 2, 3.8 successes; t = (a + 1) / 100 is smallest for the hard prompt,
    # whose weight exp(sqrt(0.2 * 0.8) / 0.012) dwarfs the others: it takes all but the others' k_min
    rule = make_rule("cures", {"tau": 100.0, "k_min": 1, "k_max": 32})
    plan = RolloutPlan([0.05, 0.5, 0.95], rule, budget=30)
    w = rule.weights(np.array([0.05, 0.5, 0.95]))
    assert w[0] > w[1] > w[2]
    assert plan.request().n.tolist() == [28, 1, 1]


@settings(max_examples=60, deadline=None)
@given(w=st.lists(st.floats(0.5, 3.0), min_size=1, max_size=8), k_min=st.integers(1, 3), extra=st.integers(0, 8),
       block=st.integers(1, 3), spare=st.integers(0, 40))
def test_cures_split_within_bounds_and_monotone(w, k_min, extra, block, spare):
    k_max = k_min + extra
    budget = len(w) * k_min + spare
    n = proportional_counts(w, budget, k_min=k_min, k_max=k_max, block=block)
    assert n.sum() <= budget and n.min() >= k_min and n.max() <= k_max and ((n - k_min) % block == 0).all()
    cap = k_min + block * ((k_max - k_min) // block)
    assert n.sum() > budget - block or (n == cap).all()  # spends the budget unless every prompt is capped
    order = np.argsort(w, kind="stable")
    assert (np.diff(n[order]) >= -block).all()  # a larger weight never gets more than a block less


# -- every rule under the planner -----------------------------------------------------------------------------


@st.composite
def rule_setups(draw):
    name = draw(st.sampled_from(rule_names()))
    block = draw(st.sampled_from([1, 2]))
    max_rounds = draw(st.one_of(st.none(), st.integers(0, 3)))
    if name == "osla":
        k_init = block * draw(st.integers(1, 2))
        options = {"k_init": k_init, "k_max": k_init + block * draw(st.integers(0, 4)), "max_rounds": max_rounds,
                   "rule": draw(st.sampled_from(["paper", "eb"])) if k_init >= 2 else "paper"}
        floor = k_init
    elif name == "reinforce_ada":
        size = block * draw(st.integers(1, 3))
        options = {"round_size": size, "n": draw(st.integers(1, 4)), "k_max": size * draw(st.integers(1, 4)),
                   "exit": draw(st.sampled_from(["balanced", "positive_focused"])), "max_rounds": max_rounds}
        floor = size
    elif name == "dynamic":
        k = block * draw(st.integers(1, 3))
        options = {"k": k, "k_max": k + block * draw(st.integers(0, 3)), "max_rounds": max_rounds}
        floor = k
    else:
        k_min = draw(st.integers(1, 4))
        k_init = draw(st.one_of(st.none(), st.sampled_from([i for i in range(1, k_min + 1) if (k_min - i) % block == 0])))
        options = {"k_min": k_min, "k_max": k_min + draw(st.integers(0, 12)), "k_init": k_init, "max_rounds": max_rounds}
        if name == "cures":
            options["tau"] = draw(st.sampled_from([0.01, 10.0, 100.0]))
        floor = k_min
    m = draw(st.integers(1, 6))
    prior = draw(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.8, 1.0]), min_size=m, max_size=m))
    budget = draw(st.one_of(st.none(), st.integers(m * floor, m * floor + 30)))
    return name, options, prior, budget, block, draw(st.sampled_from([1, 3])), draw(st.integers(0, 2**16))


def run_setup(setup, forfeit_at=None):
    name, options, prior, budget, block, multiple, seed = setup
    rng = np.random.default_rng(seed)
    truth = rng.random(len(prior))
    plan = RolloutPlan(prior, make_rule(name, options), budget, block=block, round_multiple=multiple)
    rounds = []
    while round_ := plan.request():
        rounds.append(round_)
        for j, n in round_:
            if forfeit_at == (round_.number, j):
                plan.forfeit(j)
                continue
            plan.record(j, (rng.random(n) < truth[j]).astype(float))
    return plan, rounds


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=rule_setups())
def test_every_rule_keeps_the_plan_limits(setup):
    budget, block, multiple = setup[3:6]
    plan, rounds = run_setup(setup)
    rule = plan.rule
    assert plan.counts.max() <= rule.k_max
    assert budget is None or plan.spent <= budget
    assert rule.max_rounds is None or len(rounds) <= 1 + rule.max_rounds
    for round_ in rounds[1:]:
        assert (round_.n % block == 0).all()
        assert round_.rollouts % math.lcm(block, multiple) == 0
    _, rounds_again = run_setup(setup)
    assert [(r.index.tolist(), r.n.tolist()) for r in rounds] == [(r.index.tolist(), r.n.tolist()) for r in rounds_again]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=rule_setups())
def test_a_prompt_forfeited_in_round_0_is_never_topped_up(setup):
    plan, rounds = run_setup(setup, forfeit_at=(0, 0))
    assert plan.counts[0] == 0
    assert all(0 not in r.index.tolist() for r in rounds[1:])
    assert plan.result().counts.sum() == len(plan.result().rewards)


def test_osla_options_are_osla_config_fields():
    assert list(rule_options("osla")) == [f.name for f in dataclasses.fields(OslaConfig)]


def test_a_rule_whose_first_round_breaks_the_limits_is_stopped():
    class Greedy(type(make_rule("dynamic"))):
        def first_round(self, state):
            return np.full(len(state.prior), 100)

    with pytest.raises(RuntimeError, match=r"rule 'dynamic' asked for a first round of \[100, 100\] rollouts"):
        RolloutPlan([0.5, 0.5], Greedy()).request()


# -- slow references: the authors' loops written out plainly ---------------------------------------------------


def reinforce_ada_reference(streams, n, round_size, rounds, exit, threshold=0.7):
    """The authors' round loop (every active prompt draws round_size, then retires on its exit condition),
    one prompt at a time; rewards read in order from ``streams[j]``. Returns the rollouts per prompt."""
    counts = [0] * len(streams)
    active = list(range(len(streams)))
    for _ in range(rounds):
        if not active:
            break
        for j in active:
            counts[j] += round_size
        still = []
        for j in active:
            pos = sum(1 for r in streams[j][:counts[j]] if r > threshold)
            neg = counts[j] - pos
            done = pos >= 1 if exit == "positive_focused" else (pos >= n // 2 and neg >= n - n // 2)
            if not done:
                still.append(j)
        active = still
    return counts


@settings(max_examples=60, deadline=None)
@given(truth=st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), min_size=1, max_size=6), n=st.integers(1, 6),
       round_size=st.integers(1, 6), rounds=st.integers(1, 5), exit=st.sampled_from(["balanced", "positive_focused"]),
       seed=st.integers(0, 2**16))
def test_reinforce_ada_plan_matches_the_reference_loop(truth, n, round_size, rounds, exit, seed):
    rng = np.random.default_rng(seed)
    streams = [(rng.random(round_size * rounds) < p).astype(float) for p in truth]
    rule = make_rule("reinforce_ada", {"exit": exit, "n": n, "round_size": round_size,
                                       "k_max": round_size * rounds, "max_rounds": rounds - 1})
    plan = RolloutPlan([0.5] * len(truth), rule)
    drive(plan, lambda r, j, k: streams[j][plan.counts[j]:plan.counts[j] + k])
    assert plan.counts.tolist() == reinforce_ada_reference(streams, n, round_size, rounds, exit)


def capped_proportional_reference(w, budget, k_min, k_max):
    """The real-valued split clip(lam w, k_min, k_max) summing to ``budget``, by walking lam over the points
    where a prompt leaves k_min or reaches k_max (between two, the sum is linear in lam)."""
    def total(lam):
        return sum(min(max(lam * x, k_min), k_max) for x in w)

    points = sorted({k_min / x for x in w} | {k_max / x for x in w})
    for a, b in itertools.pairwise(points):
        if total(a) <= budget <= total(b):
            mid = (a + b) / 2
            free = sum(x for x in w if k_min < mid * x < k_max)  # the prompts not clipped inside (a, b)
            lam = mid if free == 0 else (budget - (total(mid) - mid * free)) / free
            return [min(max(lam * x, k_min), k_max) for x in w]
    return [k_min if budget <= total(points[0]) else k_max for _ in w]


@settings(max_examples=60, deadline=None)
@given(w=st.lists(st.floats(0.2, 5.0), min_size=1, max_size=6), k_min=st.integers(1, 3), extra=st.integers(1, 10),
       spare=st.integers(0, 30))
def test_cures_split_rounds_the_water_filling_reference(w, k_min, extra, spare):
    k_max = k_min + extra
    budget = min(len(w) * k_min + spare, len(w) * k_max)
    ideal = capped_proportional_reference(w, budget, k_min, k_max)
    counts = proportional_counts(w, budget, k_min=k_min, k_max=k_max)
    assert counts.sum() == budget  # block 1: the whole budget is spent
    assert (np.abs(counts - np.asarray(ideal)) < 1 + 1e-6).all()  # each within one rollout of the real split
