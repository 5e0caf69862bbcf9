"""What a rollout rule is to :class:`v05.budget.RolloutPlan`: the plan asks the rule for the first round's
counts and, after each recorded round, for the top-ups it wants; the plan itself enforces ``k_max``, the
global budget, ``block``, ``round_multiple``, ``max_rounds`` and ``forfeit`` the same way for every rule
(``docs/method.md`` 5 and 10).

A rule is a frozen dataclass of its settings whose fields are its options, each checked by a declared spec
(``OPTIONS``, as the estimators declare theirs): ``make_rule(name, options)`` in :mod:`v05.budget.rules`
checks and builds one by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from v05._validation import Choice, Flag, Integer, Number


@dataclass(frozen=True)
class OrNone:
    """A declared spec that also accepts ``None`` (e.g. ``max_rounds=None``: no cap)."""

    spec: Integer | Number

    def check(self, value, name: str):
        return None if value is None else self.spec.check(value, name)

    def describe(self) -> str:
        return f"None or {self.spec.describe()}"


Spec = Choice | Number | Integer | Flag | OrNone


@dataclass(frozen=True)
class PlanState:
    """What a rule reads about the plan when it decides a round; arrays of shape (M,) unless said.

    ``means`` are unit-scale (NaN before a prompt's first rollout); ``unit_rewards`` and ``group`` (shape (N,))
    hold every recorded rollout, in recording order; ``rounds`` is the number of rounds requested so far (0
    when the first is being planned); ``budget`` the global cap or None; ``spent`` the rollouts asked for so far.
    """

    prior: np.ndarray
    prior_var: np.ndarray | None
    counts: np.ndarray
    means: np.ndarray
    unit_rewards: np.ndarray
    group: np.ndarray
    rounds: int
    budget: int | None
    spent: int
    block: int


class RolloutRule:
    """Base of every rollout rule. Subclasses are frozen dataclasses whose fields are declared in ``OPTIONS``;
    they all have ``k_max`` and ``max_rounds`` (top-up rounds after the first, None: no cap)."""

    name: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Spec]]
    k_max: int
    max_rounds: int | None

    @classmethod
    def from_options(cls, **options) -> RolloutRule:
        """The rule with these (already checked) options, the rest at their defaults."""
        return cls(**options)

    def check_options(self) -> None:
        """Run every declared spec on the field of the same name (call from ``__post_init__``)."""
        for field in dataclasses.fields(self):
            self.OPTIONS[field.name].check(getattr(self, field.name), f"{self.name}: {field.name}")

    def check_plan(self, m: int, budget: int | None, block: int) -> None:
        """Raise ``ValueError`` if the rule cannot run on ``m`` prompts under ``budget`` in top-ups of ``block``."""

    def first_round(self, state: PlanState) -> np.ndarray:
        """(M,) rollouts of every prompt in round 0 (within ``k_max`` and the budget)."""
        raise NotImplementedError

    def top_up(self, state: PlanState) -> tuple[np.ndarray, np.ndarray]:
        """(M,) extra rollouts each prompt wants this round (0: none) and (M,) its priority: when the budget
        or ``round_multiple`` cuts a round, larger priorities are served first. The plan rounds the extras up
        to ``block``, caps them at ``k_max`` and never tops up a prompt with no recorded rollout."""
        raise NotImplementedError


def minimum_budget_error(budget: int, m: int, per_prompt: int, name: str) -> ValueError:
    """The one wording of 'the budget cannot pay for the first round' (``name`` is the per-prompt setting)."""
    return ValueError(f"budget ({budget}) is below {name} x prompts ({per_prompt} x {m} = {m * per_prompt})")


def block_error(high: int, low: int, block: int, high_name: str = "k_max", low_name: str = "k_init") -> ValueError:
    """The one wording of 'top-ups between these counts cannot come in whole blocks'."""
    return ValueError(f"{high_name} - {low_name} ({high} - {low}) must be a multiple of block ({block}): top-ups come "
                      "in blocks")


# -- rules that plan the whole split up front (Knapsack RL, CurES) ---------------------------------------

def check_planned_settings(rule) -> None:
    """Checks shared by the rules that plan the split up front (``k_min``, ``k_max``, ``k_init``)."""
    if rule.k_max < rule.k_min:
        raise ValueError(f"{rule.name}: k_max ({rule.k_max}) must be >= k_min ({rule.k_min})")
    if rule.k_init is not None and rule.k_init > rule.k_min:
        raise ValueError(f"{rule.name}: k_init ({rule.k_init}) must be <= k_min ({rule.k_min}): the first round "
                         "is part of every prompt's count")


def check_planned_plan(rule, m: int, budget: int | None, block: int) -> None:
    """A planned split's first round fits the budget, and its second round comes in whole blocks."""
    if rule.k_init is not None and (rule.k_min - rule.k_init) % block:
        raise block_error(rule.k_min, rule.k_init, block, "k_min", "k_init")
    if budget is not None and budget < m * rule.k_min:
        raise minimum_budget_error(budget, m, rule.k_min, "k_min")


def planned_first_round(rule, planned: np.ndarray) -> np.ndarray:
    """The whole split (``k_init`` None) or ``k_init`` for every prompt."""
    return planned if rule.k_init is None else np.full(len(planned), rule.k_init, dtype=np.int64)


def planned_top_up(rule, state: PlanState, planned: np.ndarray, priority: np.ndarray):
    """The rest of the planned counts in the second round (with ``k_init`` set), nothing after."""
    if rule.k_init is None or state.rounds != 1:
        return np.zeros(len(planned), dtype=np.int64), priority
    return planned - rule.k_init, priority
