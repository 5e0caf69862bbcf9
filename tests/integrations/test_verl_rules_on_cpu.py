"""The rollout rule of verl's planner by one setting (``+v05.rollouts.rule``): V05ReplayBuffer against an
in-memory TransferQueue draws exactly what RolloutPlan draws under each rule, and the composed config checks the
rule and its options before training."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")

from test_verl_sampler_on_cpu import FakeRollout, make_buffer, reward_table
from test_verl_trainer_on_cpu import OSLA, verl_config

from v05_testing.fake_tq import FakeTransferQueue
from v05.budget import OslaConfig, RolloutPlan
from v05.integrations.verl.config import RolloutSettings, check_run
from v05.integrations.verl.keys import split_key
from v05.integrations.verl.topup import TopUpScheduler

ROOTS = [f"root{i}" for i in range(8)]
PRIOR = np.array([0.5, 0.1, 0.9, 0.2, 0.5, 0.0, 1.0, 0.3])
TRUTH = np.array([0.5, 0.9, 0.1, 0.2, 0.6, 0.0, 1.0, 0.3])  # two prompts all-equal, several priors wrong


def reference_counts(rule, budget, rewards, block):
    """The planner driven directly with the same reward sequences."""
    plan = RolloutPlan(PRIOR, rule, budget, block=block)
    drawn = np.zeros(len(ROOTS), dtype=int)
    while round_ := plan.request():
        for j, n in round_:
            plan.record(j, rewards[ROOTS[j]][drawn[j]:drawn[j] + n])
            drawn[j] += n
    return plan.result().counts.tolist()


@pytest.mark.parametrize("rule, options, budget_per_prompt, block", [
    ("osla", {}, None, 1),
    ("reinforce_ada", {"round_size": 4, "k_max": 16}, None, 2),  # drawn by the sampler; check_run refuses it for now
    ("reinforce_ada", {"exit": "positive_focused", "round_size": 2, "k_max": 8}, 6, 1),
    ("knapsack", {"k_max": 16}, 6, 1),
    ("knapsack", {"k_min": 4, "k_init": 2, "k_max": 16}, None, 2),  # a fixed first round, then the split
    ("cures", {"tau": 100.0, "k_max": 12}, 5, 1),
    ("dynamic", {"k": 2, "k_max": 10}, None, 2),
])
def test_the_sampler_draws_what_the_chosen_rule_plans(monkeypatch, rule, options, budget_per_prompt, block):
    tq = FakeTransferQueue().install(monkeypatch)
    settings = RolloutSettings.from_mapping({"mode": "osla", "rule": rule, "rule_options": options,
                                             "budget_per_prompt": budget_per_prompt, "block": block})
    rewards = reward_table(ROOTS, TRUTH, 32)
    rollout = FakeRollout(tq, rewards)
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(ROOTS, PRIOR)
    rollout.submit([(r, r, first[r]) for r in ROOTS])

    batch, metrics = buffer.sample(global_steps=1, partition_id="train", batch_size=len(ROOTS))

    counts = {r: 0 for r in ROOTS}
    for key in batch.keys:
        counts[rollout.parent[split_key(key)[0]]] += 1
    want = reference_counts(settings.plan_rule(), settings.step_budget(len(ROOTS)), rewards, block)
    assert list(counts.values()) == want
    assert metrics["v05/rollouts/per_prompt"] == pytest.approx(np.mean(want))
    assert len(set(want)) > 1  # every rule here gives prompts different counts


def test_rule_osla_plans_with_the_osla_settings_themselves():
    settings = RolloutSettings.from_mapping({"mode": "osla", "osla": {"k_max": 8}})
    assert settings.plan_rule() is settings.osla == OslaConfig(k_max=8)
    scheduler = TopUpScheduler(["a", "b"], [0.5, 0.0], settings.plan_rule())
    assert scheduler.first_counts == {"a": 4, "b": 4}


def test_the_rule_composes_from_the_command_line():
    v05 = check_run(verl_config(*OSLA, "+v05.rollouts.rule=knapsack", "+v05.rollouts.rule_options={k_max:16,k_min:3}"))
    assert (v05.rollouts.rule, v05.rollouts.rule_options) == ("knapsack", {"k_max": 16, "k_min": 3})
    assert v05.rollouts.plan_rule().k_max == 16


@pytest.mark.parametrize("overrides, exc, match", [
    ([*OSLA, "+v05.rollouts.rule=knapsak"], ValueError, r"v05.rollouts.rule == 'knapsak'; known rollout rules: osla"),
    ([*OSLA, "+v05.rollouts.rule=cures", "+v05.rollouts.rule_options={k_mx:8}"], TypeError,
     r"v05.rollouts.rule_options: rollout rule cures got unknown option\(s\) \['k_mx'\]"),
    ([*OSLA, "+v05.rollouts.rule_options={k_max:8}"], ValueError, "rule 'osla' takes no rule_options"),
    (["+v05.rollouts.rule=dynamic"], ValueError, "v05.rollouts.rule=dynamic is read only with v05.rollouts.mode=osla"),
    ([*OSLA, "+v05.rollouts.rule=dynamic", "+v05.rollouts.osla.k_max=8"], ValueError,
     "v05.rollouts.osla is read only with v05.rollouts.rule=osla"),
    ([*OSLA, "+v05.rollouts.rule=dynamic", "+v05.rollouts.rule_options={k:3}", "+v05.rollouts.block=2"], ValueError,
     r"v05.rollouts.rule=dynamic with .*must be a multiple of block \(2\)"),
    (["algorithm.adv_estimator=v05_rloo", *OSLA, "+v05.rollouts.rule=dynamic", "+v05.rollouts.rule_options={k:1}"],
     ValueError, r"estimator 'rloo' is not defined on groups of 1 rollout"),  # the dry run on the rule's first round
    ([*OSLA, "+v05.rollouts.rule=reinforce_ada", "+v05.rollouts.rule_options={exit:positive}"], ValueError,
     r"v05.rollouts.rule_options: reinforce_ada: exit='positive'"),
])
def test_bad_rules_fail_before_training_naming_the_key(overrides, exc, match):
    with pytest.raises(exc, match=match):
        check_run(verl_config(*overrides))
