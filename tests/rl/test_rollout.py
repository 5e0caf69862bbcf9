"""Rollout collection through the planner: alignment of tokens and rewards, OSLA rounds and max_rounds,
DAPO's dynamic sampling as a group predicate, the prompt stream."""

import numpy as np
import pytest
import torch

from v05.budget import OslaConfig, RolloutPlan
from v05.rl.prompts import PromptSet, PromptStream
from v05.rl.rollout import Rollouts, collect, collect_dynamic, collect_fixed, mixed_groups


def prompt_set(pool_ids) -> PromptSet:
    pool_ids = np.asarray(pool_ids)
    return PromptSet([f"{i}=" for i in pool_ids], torch.from_numpy(pool_ids)[:, None], [str(i) for i in pool_ids], pool_ids)


class FakeSampler:
    """Deterministic stand-in for ``Sampler``: each response's first token is its prompt's pool id, and the
    reward of a pool prompt's j-th draw is ``patterns[pool_id][j % len]``; it records every call."""

    def __init__(self, prompts, patterns, drawn=None, calls=None):
        self.prompts, self.patterns = prompts, patterns
        self.drawn = {} if drawn is None else drawn
        self.calls = [] if calls is None else calls

    def draw(self, index, n):
        self.calls.append((np.asarray(index).copy(), np.asarray(n).copy()))
        ids = self.prompts.pool_ids[np.repeat(index, n)]
        rewards = []
        for pid in ids:
            j = self.drawn.get(int(pid), 0)
            self.drawn[int(pid)] = j + 1
            rewards.append(self.patterns[int(pid)][j % len(self.patterns[int(pid)])])
        responses = torch.from_numpy(ids)[:, None].repeat(1, 3)  # (N, 3)
        return responses, torch.ones_like(responses, dtype=torch.bool), np.asarray(rewards, float)


def _aligned(batch: Rollouts) -> bool:
    return bool((batch.responses[:, 0].numpy() == batch.prompts.pool_ids[batch.group]).all())


def test_fixed_groups_are_one_planner_round():
    sampler = FakeSampler(prompt_set([3, 7]), {i: [1, 0] for i in range(10)})
    batch = collect_fixed(sampler, 4)
    assert batch.spent == 8 and batch.rounds == 1 and _aligned(batch) and len(sampler.calls) == 1
    assert batch.group.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert batch.counts.tolist() == [4, 4] and batch.pass_rates.tolist() == [0.5, 0.5]


def test_osla_tops_up_the_prompts_whose_prior_is_wrong():
    sampler = FakeSampler(prompt_set([0, 1, 2]), {0: [1, 0], 1: [1, 1, 1, 0, 1, 1, 1, 1], 2: [0]})
    prior = np.array([0.5, 0.0, 0.0])  # right, wrong, right
    batch = collect(sampler, RolloutPlan(prior, OslaConfig(max_rounds=None, k_init=4, k_max=16)))
    assert batch.counts.tolist() == [4, 16, 4]
    assert batch.spent == 24 and batch.rounds == 13 and _aligned(batch)
    assert len(sampler.calls) == 13  # one generation call per round
    assert batch.rewards[batch.group == 1].mean() == pytest.approx(14 / 16)


@pytest.mark.parametrize("max_rounds", [0, 1, 2, 4])
def test_max_rounds_caps_generation_rounds_not_the_top_ups(max_rounds):
    sampler = FakeSampler(prompt_set([0, 1, 2]), {0: [1, 0], 1: [1, 1, 1, 0, 1, 1, 1, 1], 2: [0]})
    plan = RolloutPlan([0.5, 0.0, 0.0], OslaConfig(k_init=4, k_max=16, max_rounds=max_rounds))
    batch = collect(sampler, plan)
    assert batch.rounds == len(sampler.calls) <= 1 + max_rounds and _aligned(batch)
    if max_rounds:
        assert batch.counts.tolist() == [4, 16, 4]  # the wrong prior still gets its 16, in fewer rounds
    else:
        assert batch.counts.tolist() == [4, 4, 4]


def test_mixed_groups_is_the_all_equal_predicate():
    rewards = np.array([1, 1, 0, 0, 1, 0, 1, 1.0])
    group = np.array([0, 0, 1, 1, 2, 2, 3, 4])  # all-correct, all-wrong, mixed, lone, lone
    assert mixed_groups(rewards, group, 5).tolist() == [False, False, True, False, False]


def test_dynamic_sampling_counts_every_rollout_and_keeps_mixed_groups():
    # pool ids 0..5: even ids are all-correct or all-wrong (dropped), odd ids are mixed (kept)
    patterns = {i: ([1, 0] if i % 2 else [float(i % 4 == 0)]) for i in range(6)}
    stream = PromptStream(6, np.random.default_rng(0))
    pool, drawn, calls = prompt_set(np.arange(6)), {}, []

    def fresh():
        return FakeSampler(pool.take(stream.next(3)), patterns, drawn, calls)

    batch = collect_dynamic(fresh(), fresh, k=4, max_resample_rounds=8)
    assert len(batch.prompts) == 3 and all(pid % 2 for pid in batch.prompts.pool_ids)
    assert batch.spent == batch.rounds * 3 * 4  # dropped groups count too
    assert batch.rounds >= 2 and _aligned(batch) and len(calls) == batch.rounds
    assert len(batch.rewards) == 12 and batch.group.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert mixed_groups(batch.rewards, batch.group, 3).all()


def test_dynamic_sampling_gives_up_after_max_resample_rounds():
    pool = prompt_set(np.arange(4))
    stream = PromptStream(4, np.random.default_rng(0))

    def fresh():
        return FakeSampler(pool.take(stream.next(2)), {i: [1.0] for i in range(4)})  # nothing is ever kept

    batch = collect_dynamic(fresh(), fresh, k=2, max_resample_rounds=3)
    assert len(batch.rewards) == 0 and len(batch.prompts) == 0 and batch.spent == 4 * 2 * 2 and batch.rounds == 4


def test_select_and_concat_keep_rows_aligned():
    sampler = FakeSampler(prompt_set([5, 6, 7]), {5: [1, 0], 6: [1], 7: [0, 1]})
    batch = collect_fixed(sampler, 2)
    kept = batch.select(np.array([True, False, True]))
    assert kept.prompts.pool_ids.tolist() == [5, 7] and kept.group.tolist() == [0, 0, 1, 1] and _aligned(kept)
    assert kept.spent == batch.spent  # dropped rollouts were still spent
    both = Rollouts.concat([kept, batch])
    assert both.prompts.pool_ids.tolist() == [5, 7, 5, 6, 7] and _aligned(both)
    assert both.spent == 2 * batch.spent and both.rounds == 2


def test_prompt_stream_epochs_and_state():
    stream = PromptStream(10, np.random.default_rng(0))
    first = np.concatenate([stream.next(4) for _ in range(5)])  # two epochs
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    state = stream.state_dict()
    ahead = np.concatenate([stream.next(7) for _ in range(3)])  # crosses into a new epoch: draws from the rng
    again = PromptStream(10, np.random.default_rng(99))
    again.load_state_dict(state)
    assert np.concatenate([again.next(7) for _ in range(3)]).tolist() == ahead.tolist()
