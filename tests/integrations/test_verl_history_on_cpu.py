"""``+v05.prior_source=history`` in the v05_sync trainer, through verl's data path (verl's TensorDict batches at
submission, the top-up planner, trajectories read back from an in-memory TransferQueue at the advantage): the
prior each step reads, the history each step leaves, the cold first batch, agreement with TRL's and the
engine's history source, and the history in verl's checkpoint folders. No Ray, no model: the trainer is built,
never init()-ed."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import torch
from test_verl_trainer_on_cpu import OSLA, FakeAgentLoop, build_trainer, verl_config
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu

from v05.baselines import compute
from v05.integrations.state import FILE
from v05.integrations.verl.config import check_run
from v05.integrations.verl.history import RunHistory, prompt_text
from v05.integrations.verl.trainer import PARENT_KEY, PRIOR_VAR_FIELD, V05SyncTrainer
from v05.value import HistoryPrior, OutcomeHistory

HISTORY = [*OSLA, "+v05.prior_source=history"]


def submit(trainer, step: int, texts: list[str], uids: list[str]):
    """Submit one batch of chat prompts as verl's dataloader gives them (a stale prior column included)."""
    rows = {"raw_prompt": np.array([[{"role": "user", "content": t}] for t in texts], dtype=object),
            "prior_value": np.array([0.99] * len(texts), dtype=object), "dummy_tensor": torch.zeros(len(texts), 1),
            "uid": np.array(uids, dtype=object)}
    batch = tu.get_tensordict(rows)
    tu.assign_non_tensor_data(batch, "global_steps", step)
    trainer.global_steps = step
    trainer._submit_batch_to_rollout(batch)
    return trainer.agent_loop_manager.batches[-1]


def store(tq, sent, rewards: dict[str, list[float]], top_ups: dict[str, tuple[str, list[float]]]):
    """Trajectories as the agent loop stores them, each carrying its prompt row's fields; returns the batch."""
    fields = {uid: {k: sent[k][i] for k in ("prior_value", PRIOR_VAR_FIELD)} for i, uid in enumerate(sent["uid"])}
    keys, tags, rows = [], [], []
    for uid, parent, rs in [(u, u, r) for u, r in rewards.items()] + [(u, p, r) for u, (p, r) in top_ups.items()]:
        for session, reward in enumerate(rs):
            keys.append(f"{uid}_{session}_0")
            tags.append({"status": "success"})
            n_tokens = 2 + session % 2  # ragged, as the agent loop stores them (nested tensors)
            rows.append({"uid": uid, PARENT_KEY: parent, **fields[parent], "response_mask": torch.ones(n_tokens),
                         "rm_scores": torch.tensor([0.0] * (n_tokens - 1) + [reward])})
    tq.kv_batch_put(keys, "train", tags=tags, fields=rows)
    return KVBatchMeta(partition_id="train", keys=keys, tags=tags), keys


def advantages(tq, keys) -> np.ndarray:
    return np.array([float(tq.fields["train"][k]["advantages"][-1]) for k in keys])


def end_step(trainer):
    trainer.timing_raw = {}
    trainer.checkpoint_manager = SimpleNamespace(update_weights=lambda step: None)  # verl's weight sync
    trainer.on_step_end()


def test_each_step_reads_the_history_of_the_steps_before_and_leaves_its_outcomes(monkeypatch):
    trainer, tq = build_trainer(monkeypatch, *HISTORY)
    assert trainer._dataset_columns() == []  # no prior column needed
    # step 1, empty history: planned with Beta(1, 1), the stale column replaced
    sent = submit(trainer, 1, ["q0", "q1", "q2"], ["u0", "u1", "u2"])
    assert list(sent["prior_value"]) == [0.5] * 3 and list(sent[PRIOR_VAR_FIELD]) == pytest.approx([1 / 12] * 3)
    np.testing.assert_allclose(trainer.replay_buffer._active[-1].plan.prior, 0.5)
    batch, keys = store(tq, sent, {"u0": [1, 1, 1, 0], "u1": [0, 0, 0, 0], "u2": [1, 0, 1, 0]},
                        {"c1": ("u1", [1, 1])})
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    # the estimator read the batch-level prior cross-fitted on the first round (top-up c1 left out)
    cold = HistoryPrior().cold_start([0.75, 0.0, 0.5], [4, 4, 4])
    parent = np.array(["u0"] * 4 + ["u1"] * 4 + ["u2"] * 4 + ["u1"] * 2)
    row = {"u0": 0, "u1": 1, "u2": 2}
    prior = np.array([cold.mean[row[p]] for p in parent])
    rewards = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1], dtype=float)
    expected = compute("v05", rewards, parent, prior=prior, prior_var=np.array([cold.var[row[p]] for p in parent]))
    np.testing.assert_allclose(advantages(tq, keys), expected.advantage, atol=1e-6)
    assert metrics["v05/prior/mean"] == pytest.approx(prior.mean())
    history = trainer.run_history.history
    assert (history.step, history.prompt, history.n_samples) == ([1] * 3, ["q0", "q1", "q2"], [4, 6, 4])
    np.testing.assert_allclose(history.pass_rate, [0.75, 2 / 6, 0.5])  # every round counts
    end_step(trainer)

    # step 2, fresh uids (verl draws new ones each fetch): q0 and q1 recur, q3 is new
    sent = submit(trainer, 2, ["q1", "q3", "q0"], ["v0", "v1", "v2"])
    want = HistoryPrior().predict(history, 2, ["q1", "q3", "q0"])
    np.testing.assert_allclose(list(sent["prior_value"]), want.mean)
    np.testing.assert_allclose(list(sent[PRIOR_VAR_FIELD]), want.var)
    np.testing.assert_allclose(trainer.replay_buffer._active[-1].plan.prior, want.mean)
    batch, keys = store(tq, sent, {"v0": [1, 0, 1, 1], "v1": [0, 0, 0, 1], "v2": [1, 1, 1, 1]}, {})
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    parent = np.repeat(["v0", "v1", "v2"], 4)
    expected = compute("v05", np.array([1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1], float), parent,
                       prior=np.repeat(want.mean, 4), prior_var=np.repeat(want.var, 4))
    np.testing.assert_allclose(advantages(tq, keys), expected.advantage, atol=1e-6)
    assert metrics["v05/prior/mean"] == pytest.approx(want.mean.mean())
    assert history.step == [1, 1, 1, 2, 2, 2] and history.prompt[3:] == ["q1", "q3", "q0"]


def test_verl_trl_and_the_engine_give_the_same_history_prior(monkeypatch):
    """The same past outcomes give the same prior in the three trainers; an empty history gives the same cold
    start in TRL and verl (the engine's history is never empty: it starts with a held-out evaluation)."""
    pytest.importorskip("trl")
    from v05.integrations.trl.priors import HistorySource
    from v05.integrations.trl.rows import PromptTable
    from v05.rl.step import predict_prior

    trainer, tq = build_trainer(monkeypatch, *HISTORY)
    first = {"u0": [1, 1, 0, 0], "u1": [0, 0, 0, 0], "u2": [1, 1, 1, 0], "u3": [1, 1, 1, 1]}
    texts = ["q0", "q1", "q2", "q3"]
    sent = submit(trainer, 1, texts, list(first))
    batch, keys = store(tq, sent, first, {})
    trainer._compute_advantage(batch, {})
    trl = HistorySource()
    table = PromptTable.from_rows([{"prompt": t} for t in texts for _ in range(4)], 4)[0]
    rates, counts = np.array([0.5, 0.0, 0.75, 1.0]), np.full(4, 4)
    cold = trl.predict(table, 0, rates, counts)
    assert len(set(cold.mean.tolist())) > 1  # an informed, per-prompt cold start
    group = np.repeat(np.arange(4), 4)
    expected = compute("v05", np.concatenate(list(first.values())).astype(float), group, prior=cold.mean[group],
                       prior_var=cold.var[group])
    np.testing.assert_allclose(advantages(tq, keys), expected.advantage, atol=1e-6)
    trl.observe(0, table.texts, rates, counts)
    end_step(trainer)

    targets = ["q2", "q9", "q0"]
    sent = submit(trainer, 2, targets, ["v0", "v1", "v2"])
    trl_prior = trl.predict(PromptTable.from_rows([{"prompt": t} for t in targets for _ in range(4)], 4)[0], 1,
                            np.full(3, np.nan), np.zeros(3))
    engine = OutcomeHistory.from_state_dict(trainer.run_history.history.state_dict())
    engine_prior = predict_prior(SimpleNamespace(prior_source=HistoryPrior()), SimpleNamespace(history=engine, step=2),
                                 SimpleNamespace(texts=targets))
    for prior in (trl_prior, engine_prior):
        np.testing.assert_allclose(list(sent["prior_value"]), prior.mean)
        np.testing.assert_allclose(list(sent[PRIOR_VAR_FIELD]), prior.var)


def test_the_prompt_key_is_its_text():
    assert prompt_text([{"role": "user", "content": "what is 2+2?"}]) == "what is 2+2?"
    assert prompt_text(np.array([{"role": "user", "content": "x"}], dtype=object)) == "x"
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}]
    assert json.loads(prompt_text(chat)) == chat and prompt_text("plain") == "plain"


def checkpointed(monkeypatch, tmp_path, steps):
    """A trainer saving at each of ``steps`` (one history row more each time), verl's own saving replaced."""
    monkeypatch.setattr(PPOTrainerSync, "_save_checkpoint", lambda self: None)  # actor/critic/dataloader state
    trainer, _ = build_trainer(monkeypatch, *HISTORY, f"trainer.default_local_dir={tmp_path}")
    saved = {}
    for step in steps:
        trainer.run_history.history.add(step, [f"q{step}"], [step / 10], [4])
        trainer.global_steps = step
        trainer._save_checkpoint()
        saved[step] = json.loads(json.dumps(trainer.run_history.history.state_dict()))  # a copy
    return saved


def resumed(monkeypatch, tmp_path, step):
    monkeypatch.setattr(PPOTrainerSync, "_load_checkpoint", lambda self: setattr(self, "global_steps", step))
    trainer = V05SyncTrainer(verl_config(*HISTORY, f"trainer.default_local_dir={tmp_path}"))
    trainer.agent_loop_manager = FakeAgentLoop()
    trainer._load_checkpoint()
    return trainer.run_history.history.state_dict()


def test_the_history_round_trips_through_verls_checkpoint_folders(monkeypatch, tmp_path):
    saved = checkpointed(monkeypatch, tmp_path, [2, 4])
    assert json.loads((tmp_path / "global_step_4" / FILE).read_text())["state"]["history"] == saved[4]
    assert resumed(monkeypatch, tmp_path, 4) == saved[4]
    assert resumed(monkeypatch, tmp_path, 0) == OutcomeHistory().state_dict()  # a fresh run reads nothing


def test_a_corrupt_or_missing_history_file_is_named_and_an_older_one_used(monkeypatch, tmp_path):
    saved = checkpointed(monkeypatch, tmp_path, [2, 4])
    (tmp_path / "global_step_4" / FILE).write_text('{"format": "v05.verl/1", "sha')
    with pytest.warns(RuntimeWarning) as caught:
        assert resumed(monkeypatch, tmp_path, 4) == saved[2]
    messages = [str(w.message) for w in caught]
    assert any(f"global_step_4/{FILE} is unreadable" in m for m in messages)
    assert any("resuming the outcome history from the older" in m and "global_step_2" in m for m in messages)
    (tmp_path / "global_step_2" / FILE).unlink()
    with pytest.warns(RuntimeWarning) as caught:
        assert resumed(monkeypatch, tmp_path, 4) == OutcomeHistory().state_dict()
    messages = [str(w.message) for w in caught]
    assert any(f"global_step_2/{FILE} is missing" in m for m in messages)
    assert any("restarts empty" in m for m in messages)


def test_none_runs_a_value_free_estimator_without_any_prior(monkeypatch):
    trainer, tq = build_trainer(monkeypatch, "+v05.prior_source=none", "algorithm.adv_estimator=v05_eb_batch")
    assert trainer.run_history is None and trainer._dataset_columns() == []
    sent = submit(trainer, 1, ["q0", "q1"], ["u0", "u1"])
    batch, keys = store(tq, {"uid": sent["uid"], "prior_value": [0, 0], PRIOR_VAR_FIELD: [0, 0]},
                        {"u0": [1, 0, 0, 0], "u1": [1, 1, 1, 0]}, {})
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    expected = compute("eb_batch", np.array([1, 0, 0, 0, 1, 1, 1, 0], float), np.repeat([0, 1], 4))
    np.testing.assert_allclose(advantages(tq, keys), expected.advantage, atol=1e-6)
    assert "v05/prior/mean" not in metrics


@pytest.mark.parametrize("overrides, match", [
    (["+v05.prior_source=bogus"], r"v05.prior_source='bogus'; expected one of \('column', 'history', 'none'\)"),
    (["+v05.prior_source=none"], r"v05.prior_source='none' gives no prior, but algorithm.adv_estimator='v05' fuses"),
    (["+v05.prior_source=none", "algorithm.adv_estimator=v05_grpo", *OSLA],
     r"v05.prior_source='none' gives no prior, but v05.rollouts.mode=osla plans top-ups from a prior"),
    (["+v05.prior_source=history", "+v05.prior_var_key=prior_var"], r"v05.prior_var_key is read only with "
                                                                     r"v05.prior_source=column"),
])
def test_bad_prior_sources_fail_before_training_naming_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        check_run(verl_config(*overrides))


def test_history_gives_the_variance_an_estimator_weights_by():
    """As in TRL: v05_prior_var needs a variance column only with the column source."""
    assert check_run(verl_config("+v05.prior_source=history", "algorithm.adv_estimator=v05_prior_var")).prior_source \
        == "history"
    with pytest.raises(ValueError, match="set v05.prior_var_key .or use v05.prior_source=history"):
        check_run(verl_config("algorithm.adv_estimator=v05_prior_var"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(st.integers(0, 1), min_size=1, max_size=5),
                          st.lists(st.integers(0, 1), max_size=4)), min_size=1, max_size=6),
       st.randoms(use_true_random=False), st.booleans())
def test_observe_matches_a_slow_loop(groups, rnd, cold):
    """Sessions in any order (first round under the root's uid, top-ups under another): each root's row is its
    pass rate over every session; a cold batch's estimator prior is the cold start of the first round, in
    submission order; a warm one's is the prior as submitted."""
    run = RunHistory()
    if not cold:
        run.history.add(0, ["seen"], [0.5], [4])
    uids = [f"r{j}" for j in range(len(groups))]
    run.submit(1, uids, [[{"role": "user", "content": f"p{j}"}] for j in range(len(groups))])
    sessions = [(f"r{j}", f"r{j}", r) for j, (first, _) in enumerate(groups) for r in first]
    sessions += [(f"r{j}", f"t{j}", r) for j, (_, more) in enumerate(groups) for r in more]
    rnd.shuffle(sessions)
    parents, requests, rewards = (np.array(c, dtype=object) for c in zip(*sessions))
    submitted = rnd.random() * np.ones(len(sessions))
    prior, _ = run.observe(1, parents, requests, rewards.astype(float), submitted, submitted)
    rows = dict(zip(run.history.prompt[-len(groups):], zip(run.history.pass_rate[-len(groups):],
                                                            run.history.n_samples[-len(groups):])))
    for j, (first, more) in enumerate(groups):
        assert rows[f"p{j}"] == pytest.approx((np.mean(first + more), len(first + more)))
    if not cold:
        np.testing.assert_array_equal(prior, submitted)
        return
    expected = HistoryPrior().cold_start([np.mean(f) for f, _ in groups], [len(f) for f, _ in groups])
    np.testing.assert_allclose(prior, [expected.mean[int(p[1:])] for p in parents])


def test_left_out_rollouts_join_the_pass_rate_but_not_the_first_round():
    """Under reinforce_ada the trainer passes the left-out rollouts with no request uid: the recorded pass rate is
    the whole pool's (the kept rows are a balanced sample), and the cold start reads only the kept first round."""
    run = RunHistory()
    run.submit(1, ["a", "b"], [[{"role": "user", "content": "pa"}], [{"role": "user", "content": "pb"}]])
    parents = np.array(["a", "a", "b", "b", "a", "a", "a", "b"], dtype=object)
    requests = np.array(["a", "a", "b", "b", None, None, None, None], dtype=object)
    rewards = np.array([1, 0, 1, 1, 1, 1, 1, 0], dtype=float)
    prior, _ = run.observe(1, parents, requests, rewards, np.full(8, 0.5), np.full(8, 0.1))
    assert dict(zip(run.history.prompt, run.history.pass_rate)) == {"pa": 0.8, "pb": 2 / 3}
    assert dict(zip(run.history.prompt, run.history.n_samples)) == {"pa": 5, "pb": 3}
    expected = HistoryPrior().cold_start([0.5, 1.0], [2, 2])
    np.testing.assert_allclose(prior, expected.mean[[0, 0, 1, 1, 0, 0, 0, 1]])
