"""``V05ReplayBuffer``: verl's sync replay buffer with V0.5's sequential top-ups.

Select it with ``trainer.v1.sampler.custom_sampler.path=pkg://v05.integrations.verl.sampler`` and
``...custom_sampler.name=V05ReplayBuffer`` under ``trainer.v1.trainer_mode=v05_sync`` (which binds it to the
run's settings). For each submitted batch the trainer calls :meth:`V05ReplayBuffer.begin`, which plans round 0
(``k_init`` each); :meth:`V05ReplayBuffer.sample` then polls TransferQueue, feeds every finished request's
rewards to that step's :class:`~v05.integrations.verl.topup.TopUpScheduler`, submits the top-ups it asks for,
and holds every group back until its plan is done. Under Reinforce-Ada only each root's ``n`` rollouts
(``v05.budget.settings.update_rows``) enter the batch; the others are cleared from TransferQueue and their
rewards handed to the trainer (:meth:`V05ReplayBuffer.pop_left_out`), whose estimator reads the whole pool. The
decisions live in ``topup``; this module only reads and clears TransferQueue. The validation partition is
sampled exactly as verl's buffer does.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import transfer_queue as tq
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from v05.integrations.verl.config import RolloutSettings
from v05.integrations.verl.keys import split_key
from v05.integrations.verl.metrics import record
from v05.integrations.verl.topup import FollowUp, TopUpScheduler

Submit = Callable[[list[FollowUp]], None]


class V05ReplayBuffer(ReplayBuffer):
    """Sync sampling whose groups grow by OSLA top-ups before they are trained on (see the module docstring).

    Built by verl with its custom-sampler arguments; :meth:`bind` then gives it the rollout settings, the
    reward scale and ``submit(follow_ups)``, which sends top-up requests to generation.
    """

    def __init__(self, **verl_kwargs):
        super().__init__(**verl_kwargs)
        self.settings: RolloutSettings | None = None
        self._scale = "binary"
        self._submit: Submit | None = None
        self._active: list[TopUpScheduler] = []
        self._ready: list[str] = []  # roots whose groups are complete, oldest first
        self._requests: dict[str, list[str]] = {}  # root -> every request uid of its group
        self._left_out: dict[str, list[tuple[str, float]]] = {}  # root -> (key, reward) of its rollouts not trained on
        self._taken_left_out: list[tuple[str, float]] = []
        self._metrics: dict = {}

    def bind(self, settings: RolloutSettings, scale, submit: Submit) -> None:
        """Attach the run's rollout settings, reward scale and top-up submitter (the v05_sync trainer does)."""
        self.settings, self._scale, self._submit = settings, scale, submit

    def begin(self, roots, prior, prior_var=None) -> dict[str, int]:
        """Plan a newly submitted batch of root prompts; returns each root's first-round rollout count."""
        self._require_bound()
        budget = self.settings.step_budget(len(roots))
        scheduler = TopUpScheduler(roots, prior, self.settings.plan_rule(), budget=budget, prior_var=prior_var,
                                   scale=self._scale, block=self.settings.block)
        self._active.append(scheduler)
        return scheduler.first_counts

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        """``batch_size`` complete groups (roots with all their top-ups) and the step's budget metrics."""
        if partition_id == "val":
            return super().sample(global_steps, partition_id, batch_size)
        self._require_bound()
        last_debug_time = time.time()
        while True:
            self._sync_metadata_from_transfer_queue()
            progressed = self._advance(partition_id)
            if len(self._ready) >= batch_size:
                break
            if not self._active:
                raise RuntimeError(f"V05ReplayBuffer has {len(self._ready)} complete group(s) for a batch of "
                                   f"{batch_size} and no plan in flight: every submitted batch must go through begin()")
            if not progressed:
                last_debug_time = self._wait_for_next_poll(partition_id, last_debug_time)
        return self._take(partition_id, batch_size)

    def _advance(self, partition_id: str) -> bool:
        """Record finished requests, submit the next rounds, move finished plans to ready; True if anything moved."""
        terminal = self.finished_keys[partition_id] | self.failure_keys[partition_id]
        moved = False
        for scheduler in list(self._active):
            finished = scheduler.waiting & terminal
            for uid, (keys, rewards) in self._request_rewards(partition_id, finished).items():
                scheduler.record(uid, rewards, keys)
            moved |= bool(finished)
            if scheduler.waiting:
                continue
            follow_ups = scheduler.next_round()
            if follow_ups:
                self._submit(follow_ups)
            else:
                self._complete(scheduler)
            moved = True
        return moved

    def _request_rewards(self, partition_id: str, uids: set[str]) -> dict[str, tuple[list[str], list[float]]]:
        """Each finished request's final-output keys and rewards, one per session (the summed ``rm_scores``)."""
        final: dict[tuple[str, str], tuple[int, str]] = {}
        for key in self.partitions[partition_id]:
            uid, session, index = split_key(key)
            if uid in uids and final.get((uid, session), (-1, ""))[0] < index:
                final[(uid, session)] = (index, key)
        out: dict[str, tuple[list[str], list[float]]] = {uid: ([], []) for uid in uids}
        keys = [key for _, key in final.values()]
        if keys:
            data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["rm_scores"])
            for key, scores in zip(keys, data["rm_scores"], strict=True):
                keys_of, rewards_of = out[split_key(key)[0]]
                keys_of.append(key)
                rewards_of.append(float(scores.sum()))
        return out

    def _complete(self, scheduler: TopUpScheduler) -> None:
        self._active.remove(scheduler)
        self._ready.extend(scheduler.roots)
        for uid, root in scheduler.parent.items():
            self._requests.setdefault(root, []).append(uid)
        for key, root, reward in scheduler.left_out():
            self._left_out.setdefault(root, []).append((key, reward))
        counts = np.array(list(scheduler.counts().values()), dtype=np.float64)
        first = np.array(list(scheduler.first_counts.values()), dtype=np.float64)
        self._metrics = record({}, {
            "v05/rollouts/per_prompt": float(counts.mean()),
            "v05/rollouts/max_per_prompt": float(counts.max()),
            "v05/rollouts/top_up_rounds": float(scheduler.rounds - 1),
            "v05/rollouts/top_up_rollouts": float((counts - first).clip(0).sum()),
            "v05/rollouts/topped_up_fraction": float((counts > first).mean()),
        })

    def _take(self, partition_id: str, batch_size: int):
        roots, self._ready = self._ready[:batch_size], self._ready[batch_size:]
        uids = [uid for root in roots for uid in self._requests.pop(root)]
        batch = self._materialize_batch(partition_id, uids, dict(self.partitions[partition_id]))
        batch = self._leave_out(batch, roots)
        if len(batch) == 0:
            raise RuntimeError("V05ReplayBuffer selected groups with no trajectories (every generation failed)")
        metrics, self._metrics = self._metrics, {}
        return batch, metrics

    def _leave_out(self, batch: KVBatchMeta, roots: list[str]) -> KVBatchMeta:
        """``batch`` without the sessions of ``roots`` that stay out of the update (every output of such a
        session), which are cleared from TransferQueue; their (root, reward) wait for :meth:`pop_left_out`."""
        left = [(key, root, reward) for root in roots for key, reward in self._left_out.pop(root, [])]
        self._taken_left_out = [(root, reward) for _, root, reward in left]
        if not left:
            return batch
        sessions = {split_key(key)[:2] for key, _, _ in left}
        out = [i for i, key in enumerate(batch.keys) if split_key(key)[:2] in sessions]
        tq.kv_clear(partition_id=batch.partition_id, keys=[batch.keys[i] for i in out])
        stay = sorted(set(range(len(batch))) - set(out))
        return KVBatchMeta(partition_id=batch.partition_id, keys=[batch.keys[i] for i in stay],
                           tags=[batch.tags[i] for i in stay], fields=batch.fields, extra_info=batch.extra_info)

    def pop_left_out(self) -> list[tuple[str, float]]:
        """The (root uid, reward) of every rollout of the last sampled batch that stays out of its update (see
        :meth:`_leave_out`), once: the trainer's estimator adds them to their roots' pools."""
        out, self._taken_left_out = self._taken_left_out, []
        return out

    def _require_bound(self) -> None:
        if self._submit is None:
            raise RuntimeError("V05ReplayBuffer is not bound to a V0.5 trainer: set trainer.v1.trainer_mode=v05_sync "
                               "and +v05.rollouts.mode=osla")
