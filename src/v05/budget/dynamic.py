"""DAPO's dynamic sampling as a rollout rule (``docs/method.md`` 10.4): every prompt draws a group of ``k``;
a prompt whose rewards are all equal (no learning signal under a group-mean baseline) draws ``k`` more, round
after round, until its pool varies, ``max_rounds`` or ``k_max``.

DAPO itself replaces an all-equal group by the group of a *fresh* prompt (``v05.rl.rollout.collect_dynamic``);
a plan's prompts are fixed, so here the same prompt is drawn again. Groups still all-equal at the end are what
DAPO's filter drops (the ``dapo`` estimator's ``keep``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from v05._validation import Integer
from v05.budget.rule_base import OrNone, PlanState, RolloutRule, block_error, minimum_budget_error


@dataclass(frozen=True)
class DynamicSampling(RolloutRule):
    """Resample the all-equal groups; defaults: groups of 4, at most 8 extra draws (the engine's
    ``max_resample_rounds``), so at most 36 rollouts a prompt."""

    k: int = 4
    """Rollouts per draw (the group size), the first round included."""
    k_max: int = 36
    """No prompt gets more than this."""
    max_rounds: int | None = 8
    """Draws after the first."""

    name: ClassVar[str] = "dynamic"
    OPTIONS: ClassVar[dict] = {"k": Integer(1), "k_max": Integer(1), "max_rounds": OrNone(Integer(0))}

    def __post_init__(self):
        self.check_options()
        if self.k_max < self.k:
            raise ValueError(f"{self.name}: k_max ({self.k_max}) must be >= k ({self.k})")

    def check_plan(self, m: int, budget: int | None, block: int) -> None:
        if self.k % block or (self.k_max - self.k) % block:
            raise (block_error(self.k, 0, block, "k", "0") if self.k % block
                   else block_error(self.k_max, self.k, block, "k_max", "k"))
        if budget is not None and budget < m * self.k:
            raise minimum_budget_error(budget, m, self.k, "k")

    def first_round(self, state: PlanState) -> np.ndarray:
        return np.full(len(state.prior), self.k, dtype=np.int64)

    def top_up(self, state: PlanState) -> tuple[np.ndarray, np.ndarray]:
        """``k`` more for every prompt whose rewards so far are all equal; fewer rollouts first when the budget
        is short."""
        return np.where(all_equal(state.unit_rewards, state.group, len(state.prior)), self.k, 0), \
            -state.counts.astype(np.float64)


def all_equal(rewards: np.ndarray, group: np.ndarray, m: int) -> np.ndarray:
    """(m,) True for the prompts whose recorded rewards are all equal (a prompt with none or one included)."""
    lo, hi = np.full(m, np.inf), np.full(m, -np.inf)
    np.minimum.at(lo, group, rewards)
    np.maximum.at(hi, group, rewards)
    return ~(lo < hi)
