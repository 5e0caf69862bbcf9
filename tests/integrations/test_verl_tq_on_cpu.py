"""V05ReplayBuffer against a real TransferQueue (its SimpleStorage backend in a local CPU-only Ray, as verl's
own ``tests/trainer/ppo/v1/test_replay_buffer_on_cpu.py`` runs verl's buffer): the top-up loop reads real
``kv_list`` statuses and ``kv_batch_get`` rewards, and its decisions are still exactly RolloutPlan's.

The rollout side is a thread that writes each request's trajectories, then its terminal status, through the
same TransferQueue calls verl's agent loop makes (``v1/agent_loop_tq.py``)."""

from __future__ import annotations

import queue
import threading
import uuid

import numpy as np
import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import ray
import torch
import transfer_queue as tq
from omegaconf import OmegaConf
from tensordict import TensorDict
from test_verl_sampler_on_cpu import reference_counts, reward_table

from v05.budget import OslaConfig
from v05.integrations.verl.config import RolloutSettings
from v05.integrations.verl.keys import split_key
from v05.integrations.verl.sampler import V05ReplayBuffer

pytestmark = pytest.mark.slow  # a local Ray with TransferQueue's controller and one storage unit: ~10-30 s to start


@pytest.fixture(scope="module")
def transfer_queue():
    started = not ray.is_initialized()
    if started:  # TransferQueue's controller and storage unit each reserve one (logical) CPU
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield
    tq.close()
    if started:
        ray.shutdown()


@pytest.fixture
def partition(transfer_queue):
    pid = f"train-{uuid.uuid4().hex}"  # one partition per test: the buffer lists every partition
    yield pid
    keys = list(tq.kv_list(partition_id=pid).get(pid, {}))
    if keys:
        tq.kv_clear(keys=keys, partition_id=pid)


class Rollout(threading.Thread):
    """Generation in miniature: a submitted request is 'pending' at once; the thread then stores one trajectory
    per session (the t-th rollout of a root gets ``rewards[root][t]``, summed ``rm_scores``) and marks the
    request 'finished', or 'failure' when ``fail[uid]`` of its sessions produced nothing."""

    def __init__(self, partition: str, rewards: dict[str, list[float]], fail: dict[str, int] | None = None):
        super().__init__(daemon=True)
        self.partition, self.rewards, self.fail = partition, rewards, fail or {}
        self.drawn = {root: 0 for root in rewards}
        self.parent: dict[str, str] = {}
        self.requests: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.start()

    def submit(self, requests) -> None:
        for uid, root, n in requests:
            self.parent[uid] = root
            tag = {"is_prompt": True, "status": "pending", "global_steps": 1}
            tq.kv_put(key=uid, partition_id=self.partition, tag=tag)
            self.requests.put((uid, root, n))

    def submit_follow_ups(self, follow_ups) -> None:
        self.submit([(f.uid, f.parent_uid, f.n) for f in follow_ups])

    def run(self) -> None:
        try:
            while (request := self.requests.get()) is not None:
                self._generate(*request)
        except BaseException as e:  # surfaced by stop()
            self.error = e

    def _generate(self, uid: str, root: str, n: int) -> None:
        done = n - self.fail.get(uid, 0)
        if done:
            rewards = self.rewards[root][self.drawn[root]:self.drawn[root] + done]
            self.drawn[root] += done
            scores = torch.stack([torch.tensor([0.0, r]) for r in rewards])  # (done, T): the reward on the last token
            tq.kv_batch_put(keys=[f"{uid}_{s}_0" for s in range(done)], partition_id=self.partition,
                            fields=TensorDict({"rm_scores": scores}, batch_size=done),
                            tags=[{"status": "success", "global_steps": 1}] * done)
        status = "finished" if done == n else "failure"
        tq.kv_put(key=uid, partition_id=self.partition, tag={"is_prompt": True, "status": status, "global_steps": 1})

    def stop(self) -> None:
        self.requests.put(None)
        self.join(30)
        if self.error is not None:
            raise self.error


def make_buffer(settings: RolloutSettings, rollout: Rollout) -> V05ReplayBuffer:
    buffer = V05ReplayBuffer(trainer_mode="sync", trainer_config={}, max_off_policy_threshold=None,
                             max_off_policy_strategy="drop", sampler_kwargs={}, poll_interval=0.05, refill_fn=None)
    buffer.bind(settings, "binary", rollout.submit_follow_ups)
    return buffer


def test_top_ups_through_a_real_transfer_queue_follow_the_planner(partition):
    roots = [uuid.uuid4().hex for _ in range(6)]
    prior = np.array([0.5, 0.1, 0.9, 0.0, 1.0, 0.3])
    truth = np.array([0.5, 0.9, 0.1, 0.7, 0.3, 0.3])  # several priors badly wrong
    settings = RolloutSettings(mode="osla", osla=OslaConfig(k_init=4, k_max=12, max_rounds=2))
    rewards = reward_table(roots, truth, 12)
    rollout = Rollout(partition, rewards)
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(roots, prior)
    rollout.submit([(r, r, first[r]) for r in roots])

    batch, metrics = buffer.sample(global_steps=1, partition_id=partition, batch_size=len(roots))
    rollout.stop()

    counts = {r: 0 for r in roots}
    for key in batch.keys:
        counts[rollout.parent[split_key(key)[0]]] += 1
    assert list(counts.values()) == reference_counts(prior, rewards, roots, settings)
    assert max(counts.values()) > 4 and len(set(rollout.parent) - set(roots)) > 0  # top-ups happened
    assert metrics["v05/rollouts/per_prompt"] == pytest.approx(np.mean(list(counts.values())))
    assert metrics["v05/rollouts/top_up_rounds"] <= 2
    # the rewards the buffer read back are the ones stored: every trajectory of the batch is in TransferQueue
    stored = tq.kv_batch_get(keys=batch.keys, partition_id=partition, select_fields=["rm_scores"])
    assert len(stored["rm_scores"]) == len(batch.keys)
    statuses = tq.kv_list(partition_id=partition)[partition]
    assert not [k for k, tag in statuses.items() if tag.get("is_prompt")]  # every request's status was cleared


def test_a_failed_request_through_a_real_transfer_queue_is_forfeited(partition):
    roots = [uuid.uuid4().hex for _ in range(3)]
    settings = RolloutSettings(mode="osla", osla=OslaConfig(k_init=4, k_max=8))
    rewards = {roots[0]: [1, 0, 1, 0] * 2, roots[1]: [1.0] * 8, roots[2]: [0.0] * 8}
    rollout = Rollout(partition, rewards, fail={roots[2]: 4})  # every session of the third root fails
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(roots, [0.5, 0.0, 0.5])
    rollout.submit([(r, r, first[r]) for r in roots])
    batch, _ = buffer.sample(global_steps=1, partition_id=partition, batch_size=3)
    rollout.stop()
    parents = [rollout.parent[split_key(k)[0]] for k in batch.keys]
    assert parents.count(roots[2]) == 0 and parents.count(roots[0]) == 4 and parents.count(roots[1]) > 4


def test_reinforce_ada_through_a_real_transfer_queue_keeps_n_a_prompt_and_clears_the_rest(partition):
    roots = [uuid.uuid4().hex for _ in range(3)]
    settings = RolloutSettings.from_mapping({"mode": "osla", "rule": "reinforce_ada",
                                             "rule_options": {"n": 2, "round_size": 4, "k_max": 8}})
    rewards = {roots[0]: [1.0, 1.0, 0.0, 1.0], roots[1]: [0.0] * 8, roots[2]: [1.0] * 4 + [0.0, 1.0, 1.0, 1.0]}
    rollout = Rollout(partition, rewards)
    buffer = make_buffer(settings, rollout)
    first = buffer.begin(roots, [0.5, 0.5, 0.5])
    rollout.submit([(r, r, first[r]) for r in roots])
    batch, _ = buffer.sample(global_steps=1, partition_id=partition, batch_size=3)
    rollout.stop()
    assert rollout.drawn == {roots[0]: 4, roots[1]: 8, roots[2]: 8}
    parents = [rollout.parent[split_key(k)[0]] for k in batch.keys]
    scores = tq.kv_batch_get(keys=batch.keys, partition_id=partition, select_fields=["rm_scores"])["rm_scores"]
    kept = sorted((p, float(s.sum())) for p, s in zip(parents, scores))
    assert kept == sorted([(roots[0], 1.0), (roots[0], 0.0), (roots[1], 0.0), (roots[1], 0.0),
                           (roots[2], 1.0), (roots[2], 0.0)])  # one of each where the pool has both
    left_out = buffer.pop_left_out()
    assert sorted(left_out) == sorted([(roots[0], 1.0), (roots[0], 1.0)] + [(roots[1], 0.0)] * 6
                                      + [(roots[2], 1.0)] * 6)
    assert sorted(tq.kv_list(partition_id=partition)[partition]) == sorted(batch.keys)  # the rest is cleared
