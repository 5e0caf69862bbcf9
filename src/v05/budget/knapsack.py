"""Knapsack RL (``docs/method.md`` 10.2): each prompt is a knapsack item whose value with N rollouts at pass
rate p is

    Value(N, p) = (1 - p^N - (1 - p)^N) * p (1 - p)^2

(the chance the group is not all-equal, times the expected gain of one step), and the batch's rollouts are
split to maximise the summed value under the budget, each prompt between ``k_min`` and ``k_max``. p is the
prompt's prior (its last pass rate, a value model's prediction, a column: any prior source).

Value(N, p) is concave in N (one more rollout adds p^N (1-p) + (1-p)^N p, which falls with N), so taking the
largest marginal values first solves the knapsack exactly (:func:`knapsack_counts`; the authors run a
dynamic program, the test suite checks the two agree on small cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from v05._validation import Flag, Integer, Number
from v05.budget.rule_base import (OrNone, PlanState, RolloutRule, check_planned_plan, check_planned_settings,
                                  planned_first_round, planned_top_up)


def value(n, p) -> np.ndarray:
    """Knapsack RL's value of ``n`` rollouts at pass rate ``p`` (0 at p = 0 or 1: no gradient either way)."""
    n, p = np.asarray(n, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return (1.0 - p ** n - (1.0 - p) ** n) * p * (1.0 - p) ** 2


def knapsack_counts(p, budget: int, *, k_min: int = 2, k_max: int = 128, block: int = 1, alpha: float = 0.9,
                    fallback: bool = True) -> np.ndarray:
    """Rollouts per prompt (M,) maximising the summed :func:`value` with at most ``budget`` in all.

    Every prompt gets ``k_min``; prompts with 0 < p < 1 then get blocks of ``block`` rollouts, largest
    marginal value first, up to ``k_min + block * ((k_max - k_min) // block)``. With ``fallback``, when the
    rollouts those prompts are estimated to need (the N where all-equal has chance 1 - alpha,
    log(1 - alpha) / log(max(p, 1 - p)), at most k_max, summed) are fewer than the budget left, the excess goes
    first to the prompts with p = 0 (if none, to those with p = 1), in equal blocks within k_max. When no
    prompt has 0 < p < 1, the rest of the budget is spread that way. Rollouts no prompt can take are not drawn.

    Examples
    --------
    >>> knapsack_counts([0.5, 0.0, 1.0], 12).tolist()   # p = 0.5 needs ~3 of the 6 left: the p = 0 prompt gets 3
    [5, 5, 2]
    """
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    counts = np.full(m, k_min, dtype=np.int64)
    units_left = (budget - m * k_min) // block
    units_cap = (k_max - k_min) // block
    effective = (p > 0) & (p < 1)
    if fallback or not effective.any():
        spare = units_left
        if effective.any():
            with np.errstate(divide="ignore"):
                need = np.log(1.0 - alpha) / np.log(np.maximum(p[effective], 1.0 - p[effective]))
            spare = units_left - int(np.minimum(k_max, need).astype(np.int64).sum()) // block
        if spare > 0:
            target = np.flatnonzero(p == 0) if (p == 0).any() else np.flatnonzero(~effective)
            units = spread(spare, np.full(len(target), units_cap))
            counts[target] += block * units
            units_left -= int(units.sum())
    idx = np.flatnonzero(effective)
    if len(idx) and units_left > 0 and units_cap > 0:
        n = k_min + block * np.arange(units_cap + 1)  # (U+1,) counts reachable
        gain = np.diff(value(n[None, :], p[idx, None]), axis=1)  # (E, U) marginal value of each block
        item = np.repeat(np.arange(len(idx)), units_cap)
        order = np.lexsort((np.tile(np.arange(units_cap), len(idx)), item, -gain.ravel()))
        chosen = order[:units_left]
        chosen = chosen[gain.ravel()[chosen] > 0]
        counts[idx] += block * np.bincount(item[chosen], minlength=len(idx))
    return counts


def spread(units: int, room: np.ndarray) -> np.ndarray:
    """``units`` blocks shared as evenly as ``room`` (blocks each can take) allows, the earlier prompts taking
    the odd ones."""
    got = np.zeros(len(room), dtype=np.int64)
    while units > 0 and (room > got).any():
        open_ = np.flatnonzero(room > got)
        share = np.minimum(max(units // len(open_), 1), room[open_] - got[open_])
        share = np.where(np.cumsum(share) <= units, share, 0) if units < len(open_) else share
        got[open_] += share
        units -= int(share.sum())
    return got


@dataclass(frozen=True)
class Knapsack(RolloutRule):
    """Knapsack RL's split of the batch's rollouts; defaults are the authors' script (``min_n`` = 2,
    ``max_n`` = 128, 8 rollouts a prompt on average, alpha = 0.9)."""

    k_min: int = 2
    """Rollouts every prompt gets (``min_n``)."""
    k_max: int = 128
    """No prompt gets more than this (``max_n``)."""
    k_per_prompt: int = 8
    """Without a plan budget, the budget is this many rollouts a prompt (the authors' ``n``)."""
    alpha: float = 0.9
    """Confidence of the needed-rollouts estimate that decides the fallback."""
    fallback: bool = True
    """Give the budget the mixed prompts are not estimated to need to the p = 0 prompts first."""
    k_init: int | None = None
    """None: the whole split in the first round; an int: every prompt gets k_init in the first round (a
    trainer's fixed first group, e.g. TRL's num_generations) and the rest of its count in the second."""
    max_rounds: int | None = None
    """Top-up rounds after the first (the split needs one with k_init set, none without)."""

    name: ClassVar[str] = "knapsack"
    OPTIONS: ClassVar[dict] = {"k_min": Integer(1), "k_max": Integer(1), "k_per_prompt": Integer(1),
                               "alpha": Number(minimum=0.0, maximum=1.0, min_open=True), "fallback": Flag(),
                               "k_init": OrNone(Integer(1)), "max_rounds": OrNone(Integer(0))}

    def __post_init__(self):
        self.check_options()
        check_planned_settings(self)
        if self.alpha >= 1.0:
            raise ValueError(f"{self.name}: alpha == {self.alpha}, must be < 1 (log(1 - alpha) is the estimate)")

    def check_plan(self, m: int, budget: int | None, block: int) -> None:
        check_planned_plan(self, m, budget, block)

    def counts(self, state: PlanState) -> np.ndarray:
        """(M,) the planned split of this plan's budget."""
        budget = state.budget if state.budget is not None else self.k_per_prompt * len(state.prior)
        return knapsack_counts(state.prior, budget, k_min=self.k_min, k_max=self.k_max, block=state.block,
                               alpha=self.alpha, fallback=self.fallback)

    def first_round(self, state: PlanState) -> np.ndarray:
        return planned_first_round(self, self.counts(state))

    def top_up(self, state: PlanState) -> tuple[np.ndarray, np.ndarray]:
        planned = self.counts(state)
        return planned_top_up(self, state, planned, value(planned + state.block, state.prior) - value(planned, state.prior))

