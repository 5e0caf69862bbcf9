"""The sampler's prefix cache: each prompt read once per policy version, never an older policy's logits."""

import numpy as np
import pytest
import torch

from v05.rl.policy import Policy, PolicyConfig
from v05.rl.prompts import PromptSet
from v05.rl.sampler import Sampler, pass_rates
from v05.rl.task import ArithmeticTask


@pytest.fixture
def setting():
    torch.manual_seed(0)
    policy = Policy(PolicyConfig(d_embed=8, d_hidden=16))
    prompts = PromptSet.from_problems(ArithmeticTask.build(12, 4, seed=0).train)
    return policy, prompts


def _count_reads(policy):
    reads = []
    original = policy.read_prompts

    def counted(tokens):
        reads.append(len(tokens))
        return original(tokens)

    policy.read_prompts = counted
    return reads


def test_each_prompt_is_read_once_per_policy_version(setting):
    policy, prompts = setting
    reads = _count_reads(policy)
    sampler = Sampler(policy, prompts, torch.Generator().manual_seed(0), 1.0)
    sampler.draw(np.arange(12), np.full(12, 4))
    sampler.draw(np.array([3, 5]), np.array([1, 2]))  # a later OSLA round: served from the cache
    assert reads == [12]


def test_an_update_invalidates_the_cache(setting):
    policy, prompts = setting
    sampler = Sampler(policy, prompts, torch.Generator().manual_seed(0), 1.0)
    index = np.array([0, 4, 7])
    before, _ = sampler.prefix(index)
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.1)
    policy(prompts.tokens[:4])[0].sum().backward()
    optimizer.step()  # the policy changes under the sampler's feet
    after, state = sampler.prefix(index)
    fresh_logits, fresh_state = policy.read_prompts(prompts.tokens[torch.from_numpy(index)])
    assert not torch.equal(before, after)
    assert torch.equal(after, fresh_logits) and torch.equal(state, fresh_state)
    policy.load_state_dict({k: v + 1 for k, v in policy.state_dict().items()})  # any other change of weights
    assert torch.equal(sampler.prefix(index)[0], policy.read_prompts(prompts.tokens[torch.from_numpy(index)])[0])


def test_cached_prefix_equals_a_fresh_read_in_any_order(setting):
    policy, prompts = setting
    sampler = Sampler(policy, prompts, torch.Generator(), 1.0)
    sampler.prefix(np.array([9, 2, 2, 5]))
    index = np.array([5, 0, 9, 2])
    logits, state = sampler.prefix(index)
    fresh_logits, fresh_state = policy.read_prompts(prompts.tokens[torch.from_numpy(index)])
    assert torch.allclose(logits, fresh_logits, atol=1e-6) and torch.allclose(state, fresh_state, atol=1e-6)


def test_draws_are_aligned_and_replayable(setting):
    policy, prompts = setting
    index, n = np.array([2, 0, 5]), np.array([3, 1, 2])
    a = Sampler(policy, prompts, torch.Generator().manual_seed(4), 1.0).draw(index, n)
    b = Sampler(policy, prompts, torch.Generator().manual_seed(4), 1.0).draw(index, n)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[2], b[2]) and a[0].shape[0] == 6
    unanswerable = PromptSet(prompts.texts, prompts.tokens, ["?"] * 12, prompts.pool_ids)  # no response can match
    assert pass_rates(Sampler(policy, unanswerable, torch.Generator(), 1.0), 3).tolist() == [0.0] * 12
