"""RL^V in the CPU engine: verification inputs, the loss and its weights against plain loops, the vocabulary
extension (responses unchanged), the update hook, training runs with the verifier, and old checkpoints."""

import json
import logging
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from v05_testing.engine import tiny
from v05.rl.config import OptimConfig, TrainConfig
from v05.rl.loop import train
from v05.rl.policy import Policy, PolicyConfig
from v05.rl.task import EOS_ID, PAD_ID, VOCAB, encode_prompts
from v05.rl.update import policy_update
from v05.rl.verifier import (MARK_ID, NO_ID, VERIFY_VOCAB, YES_ID, VerifierBatch, VerifierConfig, extend_vocab,
                             make_policy, p_yes, score_rollouts, verify_inputs, verify_loss)
from v05.tasks.verifier_chat import class_weights

SMALL = PolicyConfig(d_embed=8, d_hidden=16)


def _sampled(policy, n=12, seed=0):
    prompts = torch.from_numpy(encode_prompts(["7-9+4=", "1+1=", "9-3-3+8="] * (n // 3)))
    responses, mask = policy.sample(prompts, torch.Generator().manual_seed(seed))
    return prompts, responses, mask


def test_verification_inputs_against_a_plain_loop():
    prompts, responses, mask = _sampled(Policy(SMALL))
    tokens, position = verify_inputs(prompts, responses, mask)
    assert tokens.shape == (len(prompts), prompts.shape[1] + responses.shape[1] + 1)
    for i in range(len(prompts)):
        generated = [int(t) for t, m in zip(responses[i], mask[i]) if m]
        expected = prompts[i].tolist() + generated + [MARK_ID]
        expected += [PAD_ID] * (tokens.shape[1] - len(expected))
        assert tokens[i].tolist() == expected
        assert int(position[i]) == prompts.shape[1] + len(generated)
        assert generated[-1] == EOS_ID or len(generated) == responses.shape[1]


def test_answer_tokens_extend_the_task_vocabulary():
    assert VERIFY_VOCAB.startswith(VOCAB) and len(VERIFY_VOCAB) == len(VOCAB) + 3
    assert len({MARK_ID, YES_ID, NO_ID}) == 3 and min(MARK_ID, YES_ID, NO_ID) == len(VOCAB)
    assert VerifierConfig().vocab_size == len(VOCAB) and VerifierConfig(enabled=True).vocab_size == len(VERIFY_VOCAB)
    with pytest.raises(ValueError, match="vocab_size == 3, must be >= 15"):
        Policy(SMALL, vocab_size=3)


def test_extended_policy_draws_exactly_the_responses_of_the_task_policy():
    torch.manual_seed(0)
    base = Policy(SMALL)
    big = make_policy(SMALL, VerifierConfig(enabled=True), base.state_dict(), seed=0)
    for name, tensor in base.state_dict().items():
        assert torch.equal(big.state_dict()[name][: tensor.shape[0]], tensor)
    a, b = _sampled(base, seed=3), _sampled(big, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert torch.equal(base.response_logits(a[0], a[1]), big.response_logits(a[0], a[1]))
    # the new tokens start at logit 0, so the first verdict is a coin flip
    assert torch.allclose(torch.from_numpy(score_rollouts(big, *a)).float(), torch.full((len(a[0]),), 0.5))


def test_a_policy_without_verification_tokens_cannot_score():
    with pytest.raises(ValueError, match="no verification tokens"):
        score_rollouts(Policy(SMALL), *_sampled(Policy(SMALL)))


def test_p_yes_is_the_yes_share_of_the_two_answer_tokens():
    logits = torch.randn(5, len(VERIFY_VOCAB), generator=torch.Generator().manual_seed(1))
    probs = torch.softmax(logits, -1)
    assert torch.allclose(p_yes(logits), probs[:, YES_ID] / (probs[:, YES_ID] + probs[:, NO_ID]))


@pytest.mark.parametrize("over", ["answer_tokens", "full_vocab"])
def test_loss_is_the_weighted_next_token_cross_entropy_of_the_label(over):
    g = torch.Generator().manual_seed(2)
    logits, labels = torch.randn(6, len(VERIFY_VOCAB), generator=g), torch.tensor([1, 0, 0, 1, 0, 0], dtype=torch.bool)
    weight = torch.tensor([0.5, 1.0, 2.0, 1.0, 1.0, 3.0])
    manual = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        support = [row[YES_ID], row[NO_ID]] if over == "answer_tokens" else row
        manual.append(-math.log(math.exp(row[YES_ID if label else NO_ID]) / sum(math.exp(x) for x in support)))
    expected = sum(w * m for w, m in zip(weight.tolist(), manual)) / weight.sum().item()
    assert verify_loss(logits, labels, weight, over).item() == pytest.approx(expected, rel=1e-5)


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(st.booleans(), min_size=1, max_size=40), balance=st.booleans())
def test_class_weights(labels, balance):
    labels = np.array(labels)
    w = class_weights(labels, balance)
    assert w.shape == labels.shape and (w > 0).all()
    if balance and 0 < labels.sum() < len(labels):
        assert w[labels].sum() == pytest.approx(w[~labels].sum())  # each label carries half of the loss
        assert w.sum() == pytest.approx(len(labels))
    else:
        assert (w == 1).all()


@pytest.mark.parametrize(("settings", "message"), [
    ({"verifier.coef": 0.5}, "verifier settings are read only with verifier.enabled = true"),
    ({"verifier.enabled": True, "verifier.coef": 0}, "verifier.coef == 0, must be a finite number > 0"),
    ({"verifier.enabled": True, "verifier.coef": float("nan")}, "verifier.coef == nan"),
    ({"verifier.enabled": "yes"}, "verifier.enabled must be True or False; got str 'yes'"),
    ({"verifier.lambda": 1}, "unknown setting(s) ['verifier.lambda']"),
    ({"verifier.enabled": True, "verifier.loss": "vocab"},
     "verifier.loss='vocab'; expected one of ('answer_tokens', 'full_vocab')"),
    ({"verifier.loss": "full_vocab"}, "verifier settings are read only with verifier.enabled = true"),
])
def test_bad_verifier_settings_are_named(settings, message):
    with pytest.raises((TypeError, ValueError)) as e:
        TrainConfig().with_settings(settings)
    assert message in str(e.value)


def _update(policy, aux):
    g = torch.Generator().manual_seed(0)
    prompts, responses, mask = _sampled(policy)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    adv = torch.linspace(-1, 1, len(prompts))
    return policy_update(policy, opt, prompts, responses, mask, adv, config=OptimConfig(), generator=g, aux_loss=aux)


def test_update_hook_adds_its_loss_and_metrics_and_nothing_else():
    torch.manual_seed(0)
    base = Policy(SMALL)
    plain, neutral = Policy(SMALL), Policy(SMALL)
    plain.load_state_dict(base.state_dict())
    neutral.load_state_dict(base.state_dict())
    a = _update(plain, None)
    b = _update(neutral, lambda idx: (torch.zeros(()), {"verifier/x": float(len(idx))}))
    assert {k: v for k, v in b.items() if k != "verifier/x"} == a and b["verifier/x"] == 6.0
    assert all(torch.equal(x, y) for x, y in zip(plain.state_dict().values(), neutral.state_dict().values()))


def test_verifier_batch_loss_scales_with_coef_and_reports_unweighted_metrics():
    torch.manual_seed(0)
    policy = make_policy(SMALL, VerifierConfig(enabled=True), Policy(SMALL).state_dict(), seed=0)
    prompts, responses, mask = _sampled(policy)
    rewards = np.array([1.0, 0, 0, 0] * 3)
    idx = torch.arange(len(prompts))
    one = VerifierBatch.build(policy, VerifierConfig(enabled=True), prompts, responses, mask, rewards)
    two = VerifierBatch.build(policy, VerifierConfig(enabled=True, coef=2.0, class_balance=True), prompts, responses,
                              mask, rewards)
    loss1, stats1 = one(idx)
    loss2, stats2 = two(idx)
    assert stats1 == stats2  # metrics are unweighted
    assert stats1["verifier/p_yes_mean"] == pytest.approx(0.5) and stats1["verifier/accuracy"] == pytest.approx(0.75)
    assert loss1.item() == pytest.approx(stats1["verifier/loss"], rel=1e-6)  # equal weights: the plain mean
    w = class_weights(rewards > 0.5, True)  # 2 per correct rollout, 2/3 per wrong one
    tokens, position = verify_inputs(prompts, responses, mask)
    logits = policy(tokens)[0][torch.arange(len(prompts)), position]
    margin = (logits[:, YES_ID] - logits[:, NO_ID]).detach().numpy()
    ce = np.log1p(np.exp(np.where(rewards > 0.5, -margin, margin)))  # -log sigmoid(+-margin)
    assert loss2.item() == pytest.approx(2.0 * (w * ce).sum() / w.sum(), rel=1e-5)


def test_training_with_the_verifier_logs_it_and_trains_the_answer_tokens(tmp_path):
    cfg = tiny(**{"method.estimator": "grpo", "verifier.enabled": True, "verifier.class_balance": True})
    result = train(cfg, tmp_path, tensorboard=False)
    steps = result.records[1:]
    for r in steps:
        assert {"verifier/loss", "verifier/accuracy", "verifier/p_yes_mean", "train/loss"} <= set(r)
        assert all(math.isfinite(v) for v in r.values())
    assert steps[-1]["verifier/loss"] < steps[0]["verifier/loss"]
    from safetensors.torch import load_file

    latest = (tmp_path / "checkpoints" / "latest").read_text()
    final = load_file(str(tmp_path / "checkpoints" / latest / "weights.safetensors"))
    start = extend_vocab(load_file(str(next(tmp_path.glob("warmup_*.safetensors")))), 3, seed=cfg.task.seed)
    for name in ("embed.weight", "head.weight"):  # the marker's embedding and the Y/N outputs were learned
        rows = [MARK_ID] if name == "embed.weight" else [YES_ID, NO_ID]
        assert not torch.equal(final[f"policy.{name}"][rows], start[name][rows])


def test_a_checkpoint_from_before_the_verifier_resumes_as_a_run_without_it(tmp_path, caplog):
    cfg = tiny(**{"method.estimator": "grpo", "total_rollouts": 480, "checkpoint_every": 2})
    reference = train(cfg, tmp_path / "reference", tensorboard=False)

    def crash(record):
        if record["step"] == 3:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        train(cfg, tmp_path / "run", on_record=crash, tensorboard=False)
    state_file = tmp_path / "run" / "checkpoints" / "step_000002" / "state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["verifier"]  # as written before the section existed
    state_file.write_text(json.dumps(state))
    with caplog.at_level(logging.INFO, logger="v05.rl"):
        resumed = train(cfg, tmp_path / "run", tensorboard=False)
    assert "resuming from step 2" in caplog.text
    keep = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]  # noqa: E731
    assert keep(resumed.records) == keep(reference.records)
    with pytest.raises(ValueError, match=r"settings \['verifier.enabled'\] differ"):
        train(tiny(**{"method.estimator": "grpo", "total_rollouts": 480, "checkpoint_every": 2,
                      "verifier.enabled": True}), tmp_path / "run", tensorboard=False)
