"""Exact pass rates (teacher forcing) against sampling, and the oracle prior in a training run."""

import numpy as np
import pytest
import torch

from v05_testing.engine import short_chain_policy, tiny
from v05.rl.exact import ExactPassRatePrior, answer_tokens, exact_pass_rates, log_pass_rates
from v05.rl.loop import train
from v05.rl.prompts import PromptSet
from v05.rl.sampler import Sampler, pass_rates
from v05.rl.task import encode_prompts, make_problems


@pytest.fixture(scope="module")
def policy():
    return short_chain_policy()


def _problems(n=6, seed=0):
    return make_problems(n, np.random.default_rng(seed), max_terms=3)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_exact_pass_rate_is_what_sampling_converges_to(policy, temperature):
    problems = _problems()
    exact = exact_pass_rates(policy, [p.prompt for p in problems], [p.answer for p in problems], temperature)
    n = 20000
    sampled = pass_rates(Sampler(policy, PromptSet.from_problems(problems), torch.Generator().manual_seed(0),
                                 temperature), n)
    se = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(sampled - exact) < 5 * se + 1e-4), (sampled, exact)
    assert exact.max() > 0.1 and exact.min() < 0.9  # the check is not vacuous


def test_log_pass_rates_ignore_the_padding_after_the_end_token(policy):
    answers, mask = answer_tokens(["-12", "7"])
    assert mask.sum(1).tolist() == [4, 2]  # "-12$", "7$"
    prompts = torch.from_numpy(encode_prompts(["1-9-4=", "3+4="]))
    other = answers.clone()
    other[1, 2:] = 5  # change what follows "7$": the pass rate must not move
    assert torch.equal(log_pass_rates(policy, prompts, answers, mask), log_pass_rates(policy, prompts, other, mask))


def test_exact_pass_rates_batch_and_check_lengths(policy):
    problems = _problems(10)
    texts, answers = [p.prompt for p in problems], [p.answer for p in problems]
    assert np.allclose(exact_pass_rates(policy, texts, answers, batch_size=3), exact_pass_rates(policy, texts, answers))
    assert exact_pass_rates(policy, [], []).shape == (0,)
    with pytest.raises(ValueError, match="2 prompts but 1 answers"):
        exact_pass_rates(policy, texts[:2], answers[:1])


def test_exact_prior_follows_the_policy_and_names_unknown_prompts(policy):
    problems = _problems()
    prior = ExactPassRatePrior(policy, {p.prompt: p.answer for p in problems})
    out = prior.predict(None, 1, [problems[1].prompt, problems[0].prompt])
    mean, var = out.mean, out.var
    assert np.allclose(mean, exact_pass_rates(policy, [problems[1].prompt, problems[0].prompt],
                                              [problems[1].answer, problems[0].answer]))
    assert np.array_equal(var, np.zeros(2))
    with pytest.raises(ValueError, match=r"no answer known for prompt\(s\) \['5\+5='\]"):
        prior.predict(None, 1, ["5+5="])


def test_a_run_with_the_exact_prior_fuses_the_true_pass_rate(tmp_path):
    cfg = tiny(**{"method.estimator": "v05", "prior.source": "exact", "eval.probe_every": 2,
                  "eval.probe_samples": 256})
    result = train(cfg, tmp_path, tensorboard=False)
    probes = [r for r in result.records[1:] if "value/mse_true" in r]
    assert probes
    # The prior is the truth: its error against 256 fresh samples is the sampling noise of those samples
    # (p(1-p)/256 <= 0.001), far below the group mean's of 4 rollouts.
    assert all(r["value/mse_true"] < 0.002 for r in probes)
    assert np.mean([r["value/mse_true"] for r in probes]) < 0.2 * np.mean([r["baseline/mse_true_group_mean"] for r in probes])
