"""CurES (``docs/method.md`` 10.3): each prompt's accuracy has the Beta posterior Beta(a + 1, b + 1) after a
successes in a + b tries; its sampling weight is

    w = exp(sqrt(p (1 - p)) / t),   p = (a + 1) / (a + b + 2),   t = (a + 1) / tau,

largest for mid-difficulty prompts (p near 1/2). Here the weights split the batch's rollouts over its prompts,
each between ``k_min`` and ``k_max``. The counts come from the prior (any prior source): a = prior x
``prior_count``, b = (1 - prior) x ``prior_count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from v05._validation import Integer, Number
from v05.budget.rule_base import (OrNone, PlanState, RolloutRule, check_planned_plan, check_planned_settings,
                                  planned_first_round, planned_top_up)


def posterior_mean(successes, tries) -> np.ndarray:
    """Mean of CurES's Beta(a + 1, b + 1) posterior: (a + 1) / (tries + 2)."""
    return (np.asarray(successes, dtype=np.float64) + 1.0) / (np.asarray(tries, dtype=np.float64) + 2.0)


def weights(successes, tries, tau: float = 0.01) -> np.ndarray:
    """CurES's sampling weight exp(sqrt(p (1 - p)) / t) with t = (a + 1) / tau."""
    p = posterior_mean(successes, tries)
    t = (np.asarray(successes, dtype=np.float64) + 1.0) / tau
    return np.exp(np.sqrt(p * (1.0 - p)) / t)


def proportional_counts(w, budget: int, *, k_min: int = 2, k_max: int = 16, block: int = 1) -> np.ndarray:
    """Rollouts per prompt (M,) as close to proportional to ``w`` as ``k_min <= n <= k_max`` and whole blocks
    above k_min allow, at most ``budget`` in all.

    The real-valued split clip(lam w, k_min, k_max) summing to the budget (lam by bisection) is rounded down
    to blocks, and the blocks left go to the largest remainders (earlier prompts first on ties).

    Examples
    --------
    >>> proportional_counts([1, 2, 1], 12, k_min=1, k_max=5).tolist()   # 3.5, 5 (capped), 3.5
    [4, 5, 3]
    """
    w = np.asarray(w, dtype=np.float64)
    m = len(w)
    cap = k_min + block * ((k_max - k_min) // block)
    if budget >= m * cap:
        return np.full(m, cap, dtype=np.int64)
    lo, hi = 0.0, cap / w.min()
    for _ in range(200):  # sum(clip(lam w)) rises with lam: bisect to the budget
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.clip(mid * w, k_min, cap).sum() <= budget else (lo, mid)
    ideal = np.clip(lo * w, k_min, cap)
    units = np.floor((ideal - k_min) / block + 1e-9).astype(np.int64)
    left = (budget - m * k_min) // block - int(units.sum())
    remainder = (ideal - k_min) / block - units
    order = np.lexsort((np.arange(m), -remainder))
    order = order[k_min + block * (units[order] + 1) <= cap][:max(left, 0)]
    units[order] += 1
    return k_min + block * units


@dataclass(frozen=True)
class CurES(RolloutRule):
    """CurES's weights as a split of the batch's rollouts; defaults: tau = 0.01 (the authors' sampler), 8
    rollouts a prompt on average within [2, 16], a prior worth 4 tries (the authors' first pass)."""

    tau: float = 0.01
    """t = (a + 1) / tau (the authors' sampler divides by 1e-2); larger tau sharpens the weights (<= 1000, so
    exp stays finite)."""
    prior_count: int = 4
    """Tries the prior stands for: a = prior x prior_count successes."""
    k_min: int = 2
    """Rollouts every prompt gets."""
    k_max: int = 16
    """No prompt gets more than this."""
    k_per_prompt: int = 8
    """Without a plan budget, the budget is this many rollouts a prompt."""
    k_init: int | None = None
    """None: the whole split in the first round; an int: every prompt gets k_init first, the rest second."""
    max_rounds: int | None = None
    """Top-up rounds after the first."""

    name: ClassVar[str] = "cures"
    OPTIONS: ClassVar[dict] = {"tau": Number(minimum=0.0, maximum=1000.0, min_open=True), "prior_count": Integer(0),
                               "k_min": Integer(1), "k_max": Integer(1), "k_per_prompt": Integer(1),
                               "k_init": OrNone(Integer(1)), "max_rounds": OrNone(Integer(0))}

    def __post_init__(self):
        self.check_options()
        check_planned_settings(self)

    def check_plan(self, m: int, budget: int | None, block: int) -> None:
        check_planned_plan(self, m, budget, block)

    def weights(self, prior: np.ndarray) -> np.ndarray:
        """(M,) the sampling weight of every prompt, from its prior."""
        return weights(prior * self.prior_count, np.full(len(prior), float(self.prior_count)), self.tau)

    def counts(self, state: PlanState) -> np.ndarray:
        """(M,) the planned split of this plan's budget."""
        budget = state.budget if state.budget is not None else self.k_per_prompt * len(state.prior)
        return proportional_counts(self.weights(state.prior), budget, k_min=self.k_min, k_max=self.k_max,
                                   block=state.block)

    def first_round(self, state: PlanState) -> np.ndarray:
        return planned_first_round(self, self.counts(state))

    def top_up(self, state: PlanState) -> tuple[np.ndarray, np.ndarray]:
        return planned_top_up(self, state, self.counts(state), self.weights(state.prior))
