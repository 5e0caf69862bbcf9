"""Rollout collection: alignment of tokens and rewards, OSLA rounds, DAPO's dynamic sampling, the prompt stream."""

import numpy as np
import pytest
import torch

from v05.budget import OslaConfig
from v05.rl.rollout import PromptStream, collect_dynamic, collect_fixed, collect_osla


class FakeSampler:
    """Deterministic stand-in for ``Sampler``: each response's first token is its pool id, and the reward
    of a prompt's j-th draw is ``pattern[pool_id][j % len]``; it records every call."""

    def __init__(self, patterns):
        self.patterns, self.calls, self.drawn = patterns, [], {}

    def draw(self, pool_ids, n):
        self.calls.append((np.asarray(pool_ids).copy(), np.asarray(n).copy()))
        rows = np.repeat(pool_ids, n)
        rewards = []
        for pid in rows:
            j = self.drawn.get(int(pid), 0)
            self.drawn[int(pid)] = j + 1
            pat = self.patterns[int(pid)]
            rewards.append(pat[j % len(pat)])
        responses = torch.from_numpy(rows)[:, None].repeat(1, 3)  # (N, 3)
        return responses, torch.ones_like(responses, dtype=torch.bool), np.asarray(rewards, float)


def _aligned(batch):
    return bool((batch.responses[:, 0].numpy() == batch.prompt_ids[batch.group]).all())


def test_fixed_groups():
    sampler = FakeSampler({i: [1, 0] for i in range(10)})
    batch = collect_fixed(sampler, np.array([3, 7]), 4)
    assert batch.spent == 8 and batch.rounds == 1 and _aligned(batch)
    assert batch.group.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_osla_tops_up_the_prompts_whose_prior_is_wrong():
    sampler = FakeSampler({0: [1, 0], 1: [1, 1, 1, 0, 1, 1, 1, 1], 2: [0]})
    prior = np.array([0.5, 0.0, 0.0])  # right, wrong, right
    batch = collect_osla(sampler, np.array([0, 1, 2]), prior, None, OslaConfig(k_init=4, k_max=16))
    counts = np.bincount(batch.group, minlength=3)
    assert counts.tolist() == [4, 16, 4]
    assert batch.spent == 24 and batch.rounds == 13 and _aligned(batch)
    assert len(sampler.calls) == 13  # one generation call per round
    assert batch.rewards[batch.group == 1].mean() == pytest.approx(14 / 16)


def test_dynamic_sampling_counts_every_rollout_and_keeps_mixed_groups():
    # pool ids 0..5: even ids are all-correct or all-wrong (dropped), odd ids are mixed (kept)
    patterns = {i: ([1, 0] if i % 2 else [float(i % 4 == 0)]) for i in range(6)}
    sampler = FakeSampler(patterns)
    stream = PromptStream(6, np.random.default_rng(0))
    batch = collect_dynamic(sampler, stream.next, m=3, k=4, estimator="dapo", max_rounds=8, options={})
    assert len(batch.prompt_ids) == 3 and all(pid % 2 for pid in batch.prompt_ids)
    assert batch.spent == batch.rounds * 3 * 4  # dropped groups count too
    assert batch.rounds >= 2 and _aligned(batch)
    assert len(batch.rewards) == 12 and sum(len(ids) for ids, _ in sampler.calls) == 3 * batch.rounds


def test_dynamic_sampling_gives_up_after_max_rounds():
    sampler = FakeSampler({i: [1.0] for i in range(4)})  # nothing is ever kept
    stream = PromptStream(4, np.random.default_rng(0))
    batch = collect_dynamic(sampler, stream.next, m=2, k=2, estimator="dapo", max_rounds=3, options={})
    assert len(batch.rewards) == 0 and batch.spent == 4 * 2 * 2 and batch.rounds == 4


def test_prompt_stream_epochs_and_state():
    stream = PromptStream(10, np.random.default_rng(0))
    first = np.concatenate([stream.next(4) for _ in range(5)])  # two epochs
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    state, rng_state = stream.state_dict(), stream.rng.bit_generator.state
    ahead = stream.next(7)
    again = PromptStream(10, np.random.default_rng(99))
    again.load_state_dict(state)
    again.rng.bit_generator.state = rng_state
    assert again.next(7).tolist() == ahead.tolist()
