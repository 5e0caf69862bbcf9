"""The rollout rule of verl's planner by one setting (``+v05.rollouts.rule``): V05ReplayBuffer against an
in-memory TransferQueue draws exactly what RolloutPlan draws under each rule, and the composed config checks the
rule and its options before training."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import torch
from test_verl_sampler_on_cpu import FakeRollout, make_buffer, reward_table
from test_verl_trainer_on_cpu import OSLA, build_trainer, verl_config

from v05_testing.fake_tq import FakeTransferQueue
from v05.baselines import compute
from v05.budget import Allocation, OslaConfig, RolloutPlan, make_rule
from v05.integrations.verl.trainer import PARENT_KEY
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
    ("reinforce_ada", {"round_size": 4, "k_max": 16}, None, 2),
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
    for root, _ in buffer.pop_left_out():  # drawn, but out of the update (Reinforce-Ada keeps n a prompt)
        counts[root] += 1
    want = reference_counts(settings.plan_rule(), settings.step_budget(len(ROOTS)), rewards, block)
    assert list(counts.values()) == want
    assert metrics["v05/rollouts/per_prompt"] == pytest.approx(np.mean(want))
    assert len(set(want)) > 1  # every rule here gives prompts different counts


def test_reinforce_ada_trains_on_n_rollouts_a_prompt_with_the_whole_pool_as_baseline(monkeypatch):
    options = {"n": 2, "round_size": 4, "k_max": 12, "max_rounds": 2}
    trainer, tq = build_trainer(monkeypatch, *OSLA, "algorithm.adv_estimator=v05_mean", "+v05.rollouts.rule=reinforce_ada",
                                "+v05.rollouts.rule_options={n:2,round_size:4,k_max:12,max_rounds:2}")
    roots, prior = ["r0", "r1", "r2", "r3"], {"r0": 0.5, "r1": 0.1, "r2": 0.9, "r3": 0.3}
    rewards = {"r0": [1, 1, 1, 0] + [0] * 8, "r1": [0] * 12, "r2": [1] * 6 + [0] * 6, "r3": [0, 1, 0, 0] + [1] * 8}
    rollout = FakeRollout(tq, {r: [float(x) for x in rs] for r, rs in rewards.items()})
    buffer = trainer.replay_buffer
    buffer.poll_interval = 0.0
    buffer.bind(trainer.v05.rollouts, "binary", rollout.submit_follow_ups)  # the fake agent loop draws the top-ups
    first = buffer.begin(roots, [prior[r] for r in roots])
    rollout.submit([(r, r, first[r]) for r in roots])
    batch, _ = buffer.sample(global_steps=1, partition_id="train", batch_size=len(roots))

    drawn = rollout.drawn  # r2 has no negative in its first round: it draws 4 more; r1 never retires
    assert drawn == {"r0": 4, "r1": 12, "r2": 8, "r3": 4}
    pool_rewards = np.array([float(x) for r in roots for x in rewards[r][:drawn[r]]])
    pool_group = np.repeat(np.arange(len(roots)), [drawn[r] for r in roots])
    keep = make_rule("reinforce_ada", options).update_rows(Allocation(
        pool_rewards, pool_group, np.zeros(len(pool_group), dtype=np.int64), np.bincount(pool_group), 3))
    kept = sorted((roots[j], r) for j, r in zip(pool_group[keep], pool_rewards[keep]))
    parents = [rollout.parent[split_key(k)[0]] for k in batch.keys]
    scores = [float(tq.fields["train"][k]["rm_scores"].sum()) for k in batch.keys]
    assert sorted(zip(parents, scores)) == kept  # n a prompt, the ones Reinforce-Ada keeps
    assert [parents.count(r) for r in roots] == [2, 2, 2, 2]
    assert len(tq.fields["train"]) == len(batch)  # the rollouts left out are cleared from TransferQueue

    for i, (key, parent, score) in enumerate(zip(batch.keys, parents, scores)):  # as the agent loop stores them
        tokens = torch.zeros(1 + i % 3)
        tokens[-1] = score
        tq.kv_batch_put([key], "train", fields=[{"uid": split_key(key)[0], PARENT_KEY: parent, "rm_scores": tokens,
                                                  "prior_value": prior[parent], "response_mask": torch.ones(1 + i % 3)}])
    trainer._compute_advantage(batch, {})

    expected = compute("mean", pool_rewards, pool_group)  # Reinforce-Ada's baseline: the mean of the whole pool
    adv = {(roots[j], r): a for j, r, a in zip(pool_group, pool_rewards, expected.advantage)}  # one value per outcome
    for key, parent, score in zip(batch.keys, parents, scores):
        assert float(tq.fields["train"][key]["advantages"][-1]) == pytest.approx(adv[(parent, score)], abs=1e-6)
    assert buffer.pop_left_out() == []  # read once, by this batch's advantage


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
