"""V05ReplayBuffer's top-up loop against an in-memory TransferQueue (only the tq.* calls are replaced): the
decisions are exactly RolloutPlan's, top-ups carry new uids and their parent, groups wait for their children."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import torch

from v05_testing.fake_tq import FakeTransferQueue
from v05.budget import OslaConfig, RolloutPlan
from v05.integrations.verl.config import RolloutSettings
from v05.integrations.verl.keys import split_key
from v05.integrations.verl.sampler import V05ReplayBuffer
from v05.integrations.verl.topup import TopUpScheduler


class FakeRollout:
    """verl's agent loop in miniature: a submitted request runs for one poll, then stores one trajectory per
    session (the t-th rollout of a root gets ``rewards[root][t]``) and turns 'finished' (or 'failure')."""

    def __init__(self, tq: FakeTransferQueue, rewards: dict[str, list[float]], fail: dict[str, int] | None = None):
        self.tq, self.rewards, self.fail = tq, rewards, fail or {}
        self.drawn = {root: 0 for root in rewards}
        self.queue: list[tuple[str, str, int]] = []  # (uid, root, n)
        self.parent: dict[str, str] = {}
        tq.on_list = self.tick

    def submit(self, requests) -> None:
        for uid, root, n in requests:
            self.tq.kv_batch_put([uid], "train", tags=[{"is_prompt": True, "status": "pending", "global_steps": 1}])
            self.queue.append((uid, root, n))
            self.parent[uid] = root

    def submit_follow_ups(self, follow_ups) -> None:
        assert all("_" not in f.uid and f.uid != f.parent_uid for f in follow_ups)
        self.submit([(f.uid, f.parent_uid, f.n) for f in follow_ups])

    def tick(self) -> None:
        if not self.queue:
            return
        uid, root, n = self.queue.pop(0)
        done = n - self.fail.get(uid, 0)
        keys, fields = [], []
        for session in range(done):
            reward = self.rewards[root][self.drawn[root]]
            self.drawn[root] += 1
            keys.append(f"{uid}_{session}_0")
            fields.append({"rm_scores": torch.tensor([0.0, reward]), "v05_parent_uid": root})
        if keys:
            self.tq.kv_batch_put(keys, "train", tags=[{"status": "success"}] * len(keys), fields=fields)
        status = "finished" if done == n else "failure"
        self.tq.kv_batch_put([uid], "train", tags=[{"is_prompt": True, "status": status, "global_steps": 1}])


def make_buffer(settings: RolloutSettings, rollout: FakeRollout) -> V05ReplayBuffer:
    buffer = V05ReplayBuffer(trainer_mode="sync", trainer_config={}, max_off_policy_threshold=None,
                             max_off_policy_strategy="drop", sampler_kwargs={}, refill_fn=None)
    buffer.poll_interval = 0.0
    buffer.bind(settings, "binary", rollout.submit_follow_ups)
    return buffer


def reward_table(roots, truth, k_max, seed=0):
    rng = np.random.default_rng(seed)
    return {r: (rng.random(k_max) < p).astype(float).tolist() for r, p in zip(roots, truth)}


def reference_counts(prior, rewards, roots, settings: RolloutSettings):
    """The planner driven directly with the same reward sequences."""
    plan = RolloutPlan(prior, settings.osla, None, block=settings.block)
    drawn = np.zeros(len(roots), dtype=int)
    while round_ := plan.request():
        for j, n in round_:
            plan.record(j, rewards[roots[j]][drawn[j]:drawn[j] + n])
            drawn[j] += n
    return plan.result().counts.tolist()


@pytest.mark.parametrize("max_rounds, rule", [(None, "paper"), (2, "paper"), (1, "eb")])
def test_top_ups_follow_the_planner_and_groups_wait_for_their_children(monkeypatch, max_rounds, rule):
    tq = FakeTransferQueue().install(monkeypatch)
    roots = [f"root{i}" for i in range(8)]
    prior = np.array([0.5, 0.1, 0.9, 0.2, 0.5, 0.0, 1.0, 0.3])
    truth = np.array([0.5, 0.9, 0.1, 0.2, 0.6, 0.7, 0.3, 0.3])  # several priors badly wrong
    settings = RolloutSettings(mode="osla", osla=OslaConfig(k_init=4, k_max=12, rule=rule, max_rounds=max_rounds))
    rewards = reward_table(roots, truth, 12)
    rollout = FakeRollout(tq, rewards)
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(roots, prior)
    assert first == {r: 4 for r in roots}
    rollout.submit([(r, r, first[r]) for r in roots])

    batch, metrics = buffer.sample(global_steps=1, partition_id="train", batch_size=len(roots))

    assert not rollout.queue  # nothing in flight: every child finished before the batch was released
    counts = {r: 0 for r in roots}
    for key in batch.keys:
        counts[rollout.parent[split_key(key)[0]]] += 1
    assert list(counts.values()) == reference_counts(prior, rewards, roots, settings)
    assert max(counts.values()) > 4 and min(counts.values()) >= 4
    children = {split_key(k)[0] for k in batch.keys} - set(roots)
    assert children and all(rollout.parent[c] in roots for c in children)
    assert metrics["v05/rollouts/per_prompt"] == pytest.approx(np.mean(list(counts.values())))
    if max_rounds is not None:
        assert metrics["v05/rollouts/top_up_rounds"] <= max_rounds
    assert not [k for k in tq.tags["train"] if tq.tags["train"][k].get("is_prompt")]  # statuses cleared


def test_a_failed_request_is_forfeited_and_the_step_still_completes(monkeypatch):
    tq = FakeTransferQueue().install(monkeypatch)
    roots = ["a", "b", "c"]
    settings = RolloutSettings(mode="osla", osla=OslaConfig(k_init=4, k_max=8))
    rewards = {"a": [1, 0, 1, 0] * 2, "b": [1.0] * 8, "c": [0.0] * 8}
    rollout = FakeRollout(tq, rewards, fail={"c": 4})  # every session of c fails
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(roots, [0.5, 0.0, 0.5])
    rollout.submit([(r, r, first[r]) for r in roots])
    batch, metrics = buffer.sample(global_steps=1, partition_id="train", batch_size=3)
    parents = [rollout.parent[split_key(k)[0]] for k in batch.keys]
    assert parents.count("c") == 0 and parents.count("a") == 4 and parents.count("b") > 4


def test_parameter_sync_steps_take_the_complete_groups_in_turn(monkeypatch):
    tq = FakeTransferQueue().install(monkeypatch)
    roots = ["a", "b", "c", "d"]
    settings = RolloutSettings(mode="osla", osla=OslaConfig(k_init=2, k_max=2))
    rollout = FakeRollout(tq, {r: [1.0, 0.0] for r in roots})
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(roots, [0.5] * 4)
    rollout.submit([(r, r, first[r]) for r in roots])
    one, _ = buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    two, _ = buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert {split_key(k)[0] for k in one.keys} == {"a", "b"} and {split_key(k)[0] for k in two.keys} == {"c", "d"}
    with pytest.raises(RuntimeError, match="no plan in flight"):
        buffer.sample(global_steps=1, partition_id="train", batch_size=1)


def test_unbound_sampler_names_the_fix():
    buffer = V05ReplayBuffer(trainer_mode="sync", trainer_config={}, max_off_policy_threshold=None,
                             max_off_policy_strategy="drop", sampler_kwargs={}, refill_fn=None)
    with pytest.raises(RuntimeError, match="trainer_mode=v05_sync"):
        buffer.sample(global_steps=1, partition_id="train", batch_size=1)


def test_validation_is_sampled_as_verl_does(monkeypatch):
    tq = FakeTransferQueue().install(monkeypatch)
    buffer = make_buffer(RolloutSettings(mode="osla"), FakeRollout(tq, {}))
    tq.kv_batch_put(["v1"], "val", tags=[{"is_prompt": True, "status": "finished", "global_steps": 1}])
    tq.kv_batch_put(["v1_0_0", "v1_1_0"], "val", tags=[{"status": "success"}] * 2,
                    fields=[{"rm_scores": torch.tensor([1.0])}] * 2)
    batch, _ = buffer.sample(global_steps=1, partition_id="val", batch_size=1)
    assert sorted(batch.keys) == ["v1_0_0", "v1_1_0"]


def test_scheduler_refuses_uids_verl_cannot_split():
    with pytest.raises(ValueError, match="contain no '_'"):
        TopUpScheduler(["a_b"], [0.5], OslaConfig())


def test_scheduler_names_the_rollouts_reinforce_ada_leaves_out():
    rule = RolloutSettings.from_mapping({"mode": "osla", "rule": "reinforce_ada",
                                         "rule_options": {"n": 2, "round_size": 4, "k_max": 4}}).plan_rule()
    scheduler = TopUpScheduler(["a", "b"], [0.5, 0.5], rule)
    scheduler.record("a", [1, 1, 0, 1], keys=[f"a_{s}_0" for s in range(4)])
    scheduler.record("b", [0, 0, 0, 0], keys=[f"b_{s}_0" for s in range(4)])
    assert scheduler.next_round() == [] and scheduler.done  # k_max reached
    assert scheduler.left_out() == [("a_1_0", "a", 1.0), ("a_3_0", "a", 1.0), ("b_2_0", "b", 0.0), ("b_3_0", "b", 0.0)]
    unnamed = TopUpScheduler(["a"], [0.5], rule)
    unnamed.record("a", [1, 1, 0, 1])
    unnamed.next_round()
    with pytest.raises(ValueError, match="needs their trajectory keys"):
        unnamed.left_out()
    osla = TopUpScheduler(["a"], [0.5], OslaConfig(k_init=4, k_max=4))
    osla.record("a", [1, 1, 0, 1])
    osla.next_round()
    assert osla.left_out() == []  # every other rule trains on every rollout
