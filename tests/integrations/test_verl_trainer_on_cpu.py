"""The +v05 group composed with hydra on verl's own ppo_trainer.yaml, and the v05_sync trainer's data path
(submission, top-up rows, advantage with prior and parent) with only the TransferQueue and agent-loop calls
replaced. No Ray, no model: the trainer is built, never init()-ed."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import torch
from hydra import compose, initialize_config_dir
from verl.utils import tensordict_utils as tu

import verl
from v05_testing.fake_tq import FakeTransferQueue
from v05.baselines import compute
from v05.integrations.verl.config import SAMPLER_NAME, SAMPLER_PATH, V05VerlConfig, check_run
from v05.integrations.verl.main import check_launch
from v05.integrations.verl.sampler import V05ReplayBuffer
from v05.integrations.verl.topup import FollowUp
from v05.integrations.verl.trainer import PARENT_KEY, V05SyncTrainer

CONFIG_DIR = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
OSLA = ["+v05.rollouts.mode=osla", f"trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH}",
        f"trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME}"]


def verl_config(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name="ppo_trainer", overrides=["algorithm.adv_estimator=v05", "actor_rollout_ref.rollout.n=4",
                                                               "trainer.v1.trainer_mode=v05_sync", *overrides])


def test_the_group_composes_and_overrides_reach_the_settings():
    cfg = verl_config(*OSLA, "+v05.rollouts.osla.k_max=8", "+v05.rollouts.osla.rule=eb", "+v05.options.tau2=0.01",
                      "+v05.scale=pm1", "+v05.rollouts.budget_per_prompt=6")
    v05 = check_run(cfg)
    assert (v05.rollouts.mode, v05.rollouts.osla.k_max, v05.rollouts.osla.rule) == ("osla", 8, "eb")
    assert v05.rollouts.osla.k_init == 4 and v05.rollouts.osla.max_rounds == 2  # defaults kept
    assert v05.options == {"tau2": 0.01} and v05.scale == "pm1" and v05.rollouts.budget_per_prompt == 6
    assert check_run(verl_config()) == V05VerlConfig()  # no group at all: the defaults


@pytest.mark.parametrize("overrides, exc, match", [
    (["+v05.prior_kye=p"], ValueError, r"unknown setting\(s\) \['v05.prior_kye'\]; v05 settings"),
    (["+v05.rollouts.mode=adaptive"], ValueError, r"v05.rollouts.mode='adaptive'; expected one of"),
    ([*OSLA, "+v05.rollouts.osla.k_max=2"], ValueError, r"v05.rollouts.osla: k_max \(2\) must be >= k_init \(4\)"),
    ([*OSLA, "+v05.rollouts.osla.kmax=2"], ValueError, r"unknown setting\(s\) \['v05.rollouts.osla.kmax'\]"),
    (["+v05.rollouts.block=0"], ValueError, "v05.rollouts.block == 0, must be >= 1"),
    (["+v05.rollouts.budget_per_prompt=2"], ValueError, r"v05.rollouts.budget_per_prompt == 2, must be a finite number >= 4"),
    (["+v05.rollouts.budget=6", "+v05.rollouts.budget_per_prompt=6"], ValueError, "budget is the old name of"),
    (["algorithm.adv_estimator=v05_nope"], ValueError,
     r"algorithm.adv_estimator='v05_nope' is not a V0.5 estimator; V0.5's in verl: v05, v05_bernoulli, .*v05_grpo"),
    (["algorithm.adv_estimator=v05_nope", *OSLA], ValueError, "'v05_nope' is not a V0.5 estimator"),
    (["algorithm.adv_estimator=rloo_nope"], None, None),  # not ours: verl's own check decides
    (["algorithm.adv_estimator=v05_rloo", "actor_rollout_ref.rollout.n=1"], ValueError,
     r"estimator 'rloo' is not defined on groups of 1 rollout\(s\)"),
    (["+v05.scale=[1,0]"], ValueError, "v05.scale"),
    (["+v05.options.tau2=-1"], ValueError, r"v05.options .*tau2 == -1, must be a number >= 0"),
    (["+v05.options.rho=0.5"], TypeError, "unknown option"),
    (["+v05.rollouts.mode=osla"], ValueError, "custom_sampler.path=pkg://v05.integrations.verl.sampler"),
    ([*OSLA, "algorithm.filter_groups.enable=True"], ValueError, "filter_groups"),
    (["algorithm.use_kl_in_reward=True"], ValueError, "use_kl_loss"),
    (["algorithm.adv_estimator=v05_prior_var"], ValueError, "v05.prior_var_key"),
    (["algorithm.adv_estimator=grpo", "+v05.rollouts.mode=static"], ValueError, "verl's own estimator"),
])
def test_bad_values_fail_before_training_naming_the_key(overrides, exc, match):
    if exc is None:
        assert check_run(verl_config(*overrides)) == V05VerlConfig()
        return
    with pytest.raises(exc, match=match):
        check_run(verl_config(*overrides))


def test_the_old_budget_key_still_reads_with_a_warning():
    with pytest.warns(FutureWarning, match="v05.rollouts.budget is now v05.rollouts.budget_per_prompt"):
        v05 = check_run(verl_config(*OSLA, "+v05.rollouts.budget=6"))
    assert v05.rollouts.budget_per_prompt == 6 and v05.rollouts.step_budget(32) == 192


def test_launcher_refuses_a_prior_estimator_on_verls_own_trainer():
    with pytest.raises(ValueError, match="trainer.v1.trainer_mode=v05_sync"):
        check_launch(verl_config("trainer.v1.trainer_mode=sync"))
    check_launch(verl_config("algorithm.adv_estimator=v05_grpo", "trainer.v1.trainer_mode=sync"))


class FakeAgentLoop:
    def __init__(self):
        self.batches = []

    def generate_sequences(self, batch):
        self.batches.append(batch)


def prompt_batch(priors, counts=None):
    rows = {"raw_prompt": np.array([[{"role": "user", "content": f"q{i}"}] for i in range(len(priors))], dtype=object),
            "prior_value": np.array(priors, dtype=object), "dummy_tensor": torch.zeros(len(priors), 1),
            "uid": np.array([f"u{i}" for i in range(len(priors))], dtype=object)}
    if counts is not None:
        rows["rollout_n"] = np.array(counts, dtype=object)
    batch = tu.get_tensordict(rows)
    tu.assign_non_tensor_data(batch, "global_steps", 1)
    return batch


def build_trainer(monkeypatch, *overrides):
    tq = FakeTransferQueue().install(monkeypatch)
    trainer = V05SyncTrainer(verl_config(*overrides))
    trainer.agent_loop_manager = FakeAgentLoop()
    trainer.global_steps = 1
    return trainer, tq


def test_trainer_is_verls_sync_trainer_with_our_sampler_bound(monkeypatch):
    trainer, _ = build_trainer(monkeypatch, *OSLA)
    assert trainer.trainer_mode == "sync" and trainer.registered_mode == "v05_sync"
    assert isinstance(trainer.replay_buffer, V05ReplayBuffer) and trainer.replay_buffer.settings is trainer.v05.rollouts
    plain, _ = build_trainer(monkeypatch)
    assert type(plain.replay_buffer).__name__ == "ReplayBuffer"  # verl's sync buffer, not its async one


def test_osla_submission_and_top_up_rows(monkeypatch):
    trainer, tq = build_trainer(monkeypatch, *OSLA)
    trainer._submit_batch_to_rollout(prompt_batch([0.2, 0.7, 0.5]))
    sent = trainer.agent_loop_manager.batches[0]
    assert sent["__rollout_n__"].tolist() == [4, 4, 4] and list(sent[PARENT_KEY]) == ["u0", "u1", "u2"]
    assert all(tq.tags["train"][u]["status"] == "pending" for u in ["u0", "u1", "u2"])
    trainer._submit_follow_ups([FollowUp("c1", "u1", 3), FollowUp("c2", "u2", 1)])
    top = trainer.agent_loop_manager.batches[1]
    assert list(top["uid"]) == ["c1", "c2"] and list(top[PARENT_KEY]) == ["u1", "u2"]
    assert top["__rollout_n__"].tolist() == [3, 1] and list(top["prior_value"]) == [0.7, 0.5]
    assert [m[0]["content"] for m in top["raw_prompt"]] == ["q1", "q2"]


def test_static_counts_come_from_the_column_and_bad_ones_name_the_row(monkeypatch):
    trainer, _ = build_trainer(monkeypatch, "+v05.rollouts.mode=static")
    trainer._submit_batch_to_rollout(prompt_batch([0.2, 0.7], counts=[2, 6]))
    assert trainer.agent_loop_manager.batches[0]["__rollout_n__"].tolist() == [2, 6]
    with pytest.raises(ValueError, match=r"'rollout_n'\[1\] = 0"):
        trainer._submit_batch_to_rollout(prompt_batch([0.2, 0.7], counts=[2, 0]))
    with pytest.raises(ValueError, match=r"'prior_value'\[0\] = 1.2"):
        trainer._submit_batch_to_rollout(prompt_batch([1.2, 0.7], counts=[2, 2]))


def store_trajectories(tq, groups, length=5):
    """Trajectories as the agent loop stores them; groups: (uid, parent, prior, rewards). Returns keys, tags."""
    keys, tags, fields = [], [], []
    for uid, parent, prior, rewards in groups:
        for session, reward in enumerate(rewards):
            n_tokens = 1 + (session + len(uid)) % length
            scores = torch.zeros(n_tokens)
            scores[-1] = reward
            keys.append(f"{uid}_{session}_0")
            tags.append({"status": "success"})
            fields.append({"uid": uid, PARENT_KEY: parent, "prior_value": prior, "response_mask": torch.ones(n_tokens),
                           "rm_scores": scores})
    tq.kv_batch_put(keys, "train", tags=tags, fields=fields)
    return keys, tags


def test_advantage_groups_by_parent_reads_the_prior_and_skips_padding(monkeypatch):
    from transfer_queue import KVBatchMeta

    trainer, tq = build_trainer(monkeypatch, *OSLA)
    groups = [("u0", "u0", 0.2, [1, 0, 0, 0]), ("u1", "u1", 0.9, [0, 0, 0, 0]), ("c7", "u1", 0.9, [1, 1]),
              ("u2", "u2", 0.5, [1, 1, 0, 1])]
    keys, tags = store_trajectories(tq, groups)
    pad = {"uid": "padx", PARENT_KEY: "u0", "prior_value": 0.2, "response_mask": torch.zeros(1), "rm_scores": torch.zeros(1)}
    tq.kv_batch_put(["padx_0_0"], "train", tags=[{"is_padding": True}], fields=[pad])  # copies a real row's fields
    order = [5, 13, 0, 9, 2, 14, 7, 1, 12, 3, 10, 4, 8, 11, 6]  # shuffled, as _balance_batch leaves them
    batch = KVBatchMeta(partition_id="train", keys=[(keys + ["padx_0_0"])[i] for i in order],
                        tags=[(tags + [{"is_padding": True}])[i] for i in order])
    metrics = {}
    trainer._compute_advantage(batch, metrics)

    stored = {k: tq.fields["train"][k]["advantages"] for k in batch.keys}
    rewards = np.array([r for *_, rs in groups for r in rs], dtype=float)
    parent = np.array([p for _, p, _, rs in groups for _ in rs])
    prior = np.array([q for _, _, q, rs in groups for _ in rs])
    expected = compute("v05", rewards, parent, prior=prior).advantage
    for key, adv in zip(keys, expected):
        torch.testing.assert_close(stored[key], torch.full_like(stored[key], adv), rtol=1e-6, atol=1e-6)
    assert (stored["padx_0_0"] == 0).all()
    assert metrics["v05/prior/mean"] == pytest.approx(prior.mean())
    # the top-up joined its parent's group: u1's six rollouts share one baseline
    u1 = [float(stored[k][0]) for k in keys if k.startswith(("u1_", "c7_"))]
    assert u1[-1] - u1[0] == pytest.approx(1.0)


def test_verls_own_estimator_runs_unchanged(monkeypatch):
    from transfer_queue import KVBatchMeta

    trainer, tq = build_trainer(monkeypatch, "algorithm.adv_estimator=grpo")
    keys, tags = store_trajectories(tq, [("u0", "u0", 0.2, [1, 0, 0]), ("u1", "u1", 0.9, [0, 1])])
    trainer._compute_advantage(KVBatchMeta(partition_id="train", keys=keys, tags=tags), {})
    first = [float(tq.fields["train"][k]["advantages"][0]) for k in keys]
    np.testing.assert_allclose(first, compute("grpo", [1, 0, 0, 0, 1], [0, 0, 0, 1, 1]).advantage, atol=1e-5)
