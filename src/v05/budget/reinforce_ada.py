"""Reinforce-Ada (``docs/method.md`` 10.1): sample in rounds of ``round_size`` and retire a prompt once its
exit condition holds; the update group is then down-sampled to ``n`` rollouts, its baseline the mean over
the prompt's whole pool of responses.

Exit conditions (a rollout is positive when its unit-scale reward exceeds ``threshold``):
``balanced``: at least n/2 positives and n - n/2 negatives; ``positive_focused``: at least one positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from v05._validation import Choice, Integer, Number
from v05.baselines.scale import RewardScale
from v05.budget.plan import Allocation
from v05.budget.rule_base import OrNone, PlanState, RolloutRule, block_error, minimum_budget_error

EXITS = ("balanced", "positive_focused")


@dataclass(frozen=True)
class ReinforceAda(RolloutRule):
    """Reinforce-Ada's sampling rule; defaults are the authors' script (n = 4, 8 rollouts a round, 4 rounds
    in all, so ``max_rounds`` = 3 top-up rounds and at most 32 rollouts a prompt)."""

    exit: str = "balanced"
    """'balanced' (n/2 positives and n - n/2 negatives) or 'positive_focused' (one positive)."""
    n: int = 4
    """Rollouts a prompt keeps for the update (the authors' ``rollout.n``)."""
    round_size: int = 8
    """Rollouts a still-active prompt draws in each round, the first included (``round_repeat``)."""
    threshold: float = 0.7
    """A rollout is positive when its unit-scale reward exceeds this (``positive_threshold``)."""
    k_max: int = 32
    """No prompt gets more than this."""
    max_rounds: int | None = 3
    """Top-up rounds after the first (the authors' ``max_rounds`` counts the first: theirs is ours + 1)."""

    name: ClassVar[str] = "reinforce_ada"
    OPTIONS: ClassVar[dict] = {"exit": Choice(EXITS), "n": Integer(1), "round_size": Integer(1),
                               "threshold": Number(minimum=0.0, maximum=1.0), "k_max": Integer(1),
                               "max_rounds": OrNone(Integer(0))}

    def __post_init__(self):
        self.check_options()
        if self.k_max < self.round_size:
            raise ValueError(f"{self.name}: k_max ({self.k_max}) must be >= round_size ({self.round_size})")

    def check_plan(self, m: int, budget: int | None, block: int) -> None:
        if self.round_size % block:
            raise block_error(self.round_size, 0, block, "round_size", "0")
        if (self.k_max - self.round_size) % block:
            raise block_error(self.k_max, self.round_size, block, "k_max", "round_size")
        if budget is not None and budget < m * self.round_size:
            raise minimum_budget_error(budget, m, self.round_size, "round_size")

    def first_round(self, state: PlanState) -> np.ndarray:
        return np.full(len(state.prior), self.round_size, dtype=np.int64)

    def top_up(self, state: PlanState) -> tuple[np.ndarray, np.ndarray]:
        """``round_size`` more for every prompt whose exit condition does not hold yet; fewer rollouts so far
        first when the budget is short."""
        pos, neg = self.outcomes(state.unit_rewards, state.group, len(state.prior))
        extra = np.where(self.exited(pos, neg), 0, self.round_size)
        return extra, -state.counts.astype(np.float64)

    def outcomes(self, unit_rewards: np.ndarray, group: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(M,) positives and negatives recorded per prompt."""
        positive = unit_rewards > self.threshold
        return (np.bincount(group, weights=positive, minlength=m).astype(np.int64),
                np.bincount(group, weights=~positive, minlength=m).astype(np.int64))

    def exited(self, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
        """(M,) True where the exit condition holds."""
        if self.exit == "positive_focused":
            return pos >= 1
        return (pos >= self.n // 2) & (neg >= self.n - self.n // 2)

    def update_rows(self, alloc: Allocation, scale="binary") -> np.ndarray:
        """(N,) True for the rollouts of ``alloc`` that enter the update: per prompt, ``n`` of them, the first
        positives and negatives in recording order, aiming for n/2 of each (a retired prompt), or, for a prompt
        still active at the end, in its pool's proportion (``positive_focused``: at least one of each when it
        has both) and n/2 (``balanced``); the other kind fills a shortfall.

        Compute the baseline on the whole allocation (``compute("mean", alloc.rewards, alloc.group)``: the
        mean of the prompt's whole pool) and then keep these rows.
        """
        unit = RewardScale.parse(scale).to_unit(alloc.rewards)
        m = len(alloc.counts)
        positive = unit > self.threshold
        pos, neg = self.outcomes(unit, alloc.group, m)
        done = self.exited(pos, neg)
        keep = np.zeros(len(unit), dtype=bool)
        for j in range(m):
            rows = np.flatnonzero(alloc.group == j)
            take = min(self.n, len(rows))
            want_pos = self.n // 2
            if not done[j] and self.exit == "positive_focused" and take:
                want_pos = min(max(math.ceil(pos[j] / len(rows) * self.n), 1), take - 1)
            n_pos = min(want_pos, pos[j])
            n_neg = min(take - n_pos, neg[j])
            n_pos = min(take - n_neg, pos[j])  # the other kind fills a shortfall
            keep[rows[positive[rows]][:n_pos]] = True
            keep[rows[~positive[rows]][:n_neg]] = True
        return keep
