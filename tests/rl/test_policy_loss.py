"""The GRU policy (sampling, log-probabilities, warm-up) and the clipped policy-gradient loss."""

import pytest
import torch

from v05.rl.loss import aggregate, clipped_pg_loss
from v05.rl.policy import Policy, PolicyConfig, supervised_warmup, token_logprobs
from v05.rl.task import EOS_ID, MAX_RESPONSE_LEN, encode_answers, encode_prompts


@pytest.fixture
def policy():
    torch.manual_seed(0)
    return Policy(PolicyConfig(d_embed=8, d_hidden=16, n_layers=1))


def test_sampling_shapes_mask_and_determinism(policy):
    prompts = torch.from_numpy(encode_prompts(["1+2=", "3-4+5="] * 8))  # (16, T_prompt)
    r1, m1 = policy.sample(prompts, torch.Generator().manual_seed(5))
    r2, m2 = policy.sample(prompts, torch.Generator().manual_seed(5))
    assert r1.shape == m1.shape == (16, MAX_RESPONSE_LEN)
    assert torch.equal(r1, r2) and torch.equal(m1, m2)
    for row, mask in zip(r1, m1):
        ends = (row == EOS_ID).nonzero()
        n_gen = int(ends[0]) + 1 if len(ends) else MAX_RESPONSE_LEN
        assert mask[:n_gen].all() and not mask[n_gen:].any()  # generated tokens, the end token included
        assert (row[n_gen:] == EOS_ID).all()


def test_sampled_tokens_follow_the_teacher_forced_distribution(policy):
    """The frequency of each first token over many samples matches the model's probability."""
    prompts = torch.from_numpy(encode_prompts(["7+8="])).repeat(4000, 1)  # (4000, T_prompt)
    responses, _ = policy.sample(prompts, torch.Generator().manual_seed(0))
    probs = torch.softmax(policy.response_logits(prompts[:1], responses[:1])[0, 0], -1)  # (V,)
    freq = torch.bincount(responses[:, 0], minlength=len(probs)).float() / 4000
    assert torch.allclose(freq, probs.detach(), atol=0.03)


def test_warmup_lowers_the_loss(policy):
    prompts = torch.from_numpy(encode_prompts(["1+1=", "2+2=", "3-1="] * 20))
    answers = torch.from_numpy(encode_answers(["2", "4", "2"] * 20))
    losses = supervised_warmup(policy, prompts, answers, steps=60, batch_size=16, lr=1e-2,
                               generator=torch.Generator().manual_seed(0))
    assert losses[-1] < 0.5 * losses[0]


def test_aggregation_modes():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    assert aggregate(values, mask, "token-mean").item() == pytest.approx(10 / 4)
    assert aggregate(values, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)
    assert aggregate(values, mask, "seq-mean-token-sum-norm").item() == pytest.approx((6 / 3 + 4 / 3) / 2)
    with pytest.raises(ValueError, match="loss_agg = 'sum'"):
        aggregate(values, mask, "sum")


def test_on_policy_gradient_is_advantage_weighted_logprob_gradient():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.3]], requires_grad=True)
    adv = torch.tensor([2.0, -1.0])
    mask = torch.ones(2, 2, dtype=torch.bool)
    loss, stats = clipped_pg_loss(logp, logp.detach(), adv, mask, clip_low=0.2, clip_high=0.2, loss_agg="token-mean")
    loss.backward()
    assert torch.allclose(logp.grad, -adv[:, None].expand(2, 2) / 4)
    assert stats == {"clip_frac": 0.0, "kl": 0.0}


def test_clipping_stops_the_gradient_outside_the_trust_region():
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.5, 1.1, 0.5]])).requires_grad_()  # ratios 1.5, 1.1, 0.5
    loss, stats = clipped_pg_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 3, dtype=torch.bool),
                                  clip_low=0.2, clip_high=0.28, loss_agg="token-mean")
    loss.backward()
    assert logp.grad[0, 0] == 0  # ratio above 1 + clip_high with A > 0: clipped
    assert logp.grad[0, 1] != 0 and logp.grad[0, 2] != 0  # inside, or below with A > 0 (min keeps it)
    assert stats["clip_frac"] == pytest.approx(1 / 3)


def test_kl_to_the_reference(policy):
    logp = torch.tensor([[-1.0, -2.0]])
    same, _ = clipped_pg_loss(logp, logp, torch.zeros(1), torch.ones(1, 2, dtype=torch.bool), clip_low=0.2,
                              clip_high=0.2, loss_agg="token-mean", ref_logp=logp, kl_coef=0.5)
    assert same.item() == 0.0
    far, stats = clipped_pg_loss(logp, logp, torch.zeros(1), torch.ones(1, 2, dtype=torch.bool), clip_low=0.2,
                                 clip_high=0.2, loss_agg="token-mean", ref_logp=logp - 1.0, kl_coef=0.5)
    k3 = torch.exp(torch.tensor(-1.0)) + 1.0 - 1.0
    assert stats["kl"] == pytest.approx(k3.item()) and far.item() == pytest.approx(0.5 * k3.item())
    with pytest.raises(ValueError, match="kl_coef > 0 needs ref_logp"):
        clipped_pg_loss(logp, logp, torch.zeros(1), torch.ones(1, 2, dtype=torch.bool), clip_low=0.2,
                        clip_high=0.2, loss_agg="token-mean", kl_coef=0.5)


def test_token_logprobs_shape(policy):
    logits = torch.randn(3, 4, 5)
    tokens = torch.randint(0, 5, (3, 4))
    out = token_logprobs(logits, tokens)
    assert out.shape == (3, 4) and (out <= 0).all()
