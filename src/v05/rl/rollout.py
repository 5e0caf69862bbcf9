"""A step's rollouts, drawn by driving a :class:`v05.budget.RolloutPlan`: fixed groups (one round of k),
OSLA (k_init, then top-up rounds), or DAPO's dynamic sampling (fixed groups, all-equal ones dropped).

Every collector returns :class:`Rollouts` whose rows are aligned, ``group[i]`` being the planner's prompt
index (0..M-1 into ``prompts``) of ``responses[i]`` and ``rewards[i]``. Every rollout drawn counts in
``spent``, the ones a filter drops included.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from v05.budget import OslaConfig, RolloutPlan
from v05.rl.prompts import PromptSet
from v05.rl.sampler import Sampler


@dataclass(frozen=True)
class Rollouts:
    """A step's rollouts, one row per sampled response."""

    prompts: PromptSet
    """The M prompts the rollouts answer."""
    group: np.ndarray
    """(N,) prompt index (0..M-1) of each rollout."""
    responses: torch.Tensor
    """(N, T) sampled tokens."""
    mask: torch.Tensor
    """(N, T) tokens the policy generated."""
    rewards: np.ndarray
    """(N,) 0/1 rewards."""
    spent: int
    """Rollouts drawn for this step, dropped ones included."""
    rounds: int
    """Generation rounds run (OSLA: the first plus its top-ups; dynamic sampling: draws of prompts)."""

    @property
    def counts(self) -> np.ndarray:
        """(M,) rollouts per prompt."""
        return np.bincount(self.group, minlength=len(self.prompts))

    @property
    def pass_rates(self) -> np.ndarray:
        """(M,) observed mean reward per prompt."""
        return np.bincount(self.group, weights=self.rewards, minlength=len(self.prompts)) / np.maximum(self.counts, 1)

    def select(self, keep: np.ndarray) -> "Rollouts":
        """Only the prompts where ``keep`` (M,) is True, with their rollouts; prompts renumbered 0..M'-1."""
        rows = keep[self.group]  # (N,)
        renumber = np.cumsum(keep) - 1  # (M,)
        at = torch.from_numpy(rows)
        return dataclasses.replace(self, prompts=self.prompts.take(np.flatnonzero(keep)), group=renumber[self.group[rows]],
                                   responses=self.responses[at], mask=self.mask[at], rewards=self.rewards[rows])

    @classmethod
    def concat(cls, parts: list["Rollouts"]) -> "Rollouts":
        """The parts one after the other (prompt indices shifted); ``spent`` and ``rounds`` add up."""
        offsets = np.cumsum([0] + [len(p.prompts) for p in parts[:-1]])
        return cls(PromptSet.concat([p.prompts for p in parts]),
                   np.concatenate([p.group + off for p, off in zip(parts, offsets)]),
                   torch.cat([p.responses for p in parts]), torch.cat([p.mask for p in parts]),
                   np.concatenate([p.rewards for p in parts]), sum(p.spent for p in parts), sum(p.rounds for p in parts))


def collect(sampler: Sampler, plan: RolloutPlan) -> Rollouts:
    """Drive ``plan`` to its end: draw every round it requests from ``sampler``, record the rewards back."""
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []
    while round_ := plan.request():
        responses, mask, rewards = sampler.draw(round_.index, round_.n)  # (n, T), (n, T), (n,)
        plan.record(np.repeat(round_.index, round_.n), rewards)
        drawn.append((responses, mask))
    alloc = plan.result()
    return Rollouts(sampler.prompts, alloc.group, torch.cat([r for r, _ in drawn]), torch.cat([m for _, m in drawn]),
                    alloc.rewards, spent=len(alloc.rewards), rounds=alloc.rounds)


def fixed_plan(m: int, k: int) -> RolloutPlan:
    """``k`` rollouts for each of ``m`` prompts in one round: k_init = k_max = k, so nothing is ever topped
    up and the plan's prior (0.5 here) cannot change anything."""
    return RolloutPlan(np.full(m, 0.5), OslaConfig(k_init=k, k_max=k))


def collect_fixed(sampler: Sampler, k: int) -> Rollouts:
    """``k`` rollouts for every prompt of the sampler, in one generation round."""
    return collect(sampler, fixed_plan(len(sampler.prompts), k))


def mixed_groups(rewards: np.ndarray, group: np.ndarray, m: int) -> np.ndarray:
    """(m,) True for the groups whose rewards are not all equal: the ones with a learning signal under a
    group-mean baseline (DAPO's dynamic-sampling filter; a lone rollout is all-equal)."""
    lo, hi = np.full(m, np.inf), np.full(m, -np.inf)
    np.minimum.at(lo, group, rewards)
    np.maximum.at(hi, group, rewards)
    return lo < hi


def collect_dynamic(sampler: Sampler, fresh: Callable[[], Sampler], k: int, max_resample_rounds: int) -> Rollouts:
    """DAPO's dynamic sampling: ``k`` rollouts per prompt, groups with all-equal rewards dropped, and fresh
    prompts drawn until as many groups are kept as ``sampler`` has prompts (M).

    Parameters
    ----------
    sampler : Sampler
        The step's first M prompts.
    fresh : callable
        A sampler for the next M prompts of the stream.
    k : int
        Rollouts per prompt.
    max_resample_rounds : int
        Draws allowed after the first; if fewer than M groups are kept after them, the batch is what was kept
        (possibly empty).
    """
    m, kept, rounds = len(sampler.prompts), [], 0
    while True:
        batch = collect_fixed(sampler, k)
        keep = mixed_groups(batch.rewards, batch.group, m)
        keep &= np.cumsum(keep) <= m - sum(len(r.prompts) for r in kept)  # the first ones that fill the batch
        kept.append(batch.select(keep))
        rounds += 1
        if rounds > max_resample_rounds or sum(len(r.prompts) for r in kept) == m:
            return Rollouts.concat(kept)
        sampler = fresh()
