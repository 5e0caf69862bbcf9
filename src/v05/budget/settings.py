"""Top-up settings as a trainer that owns generation runs them (TRL's ``V05Config``, verl's
``+v05.rollouts``): the OSLA rule, and an optional cap on a step's rollouts.

Three quantities are called a "budget" elsewhere; each has its own name here and in every trainer:

- ``total_rollouts`` (the CPU engine): the run's length in rollouts;
- ``budget_per_prompt`` (TRL, verl): a step's rollout cap, as a mean per prompt;
- ``RolloutPlan(budget=...)``: that cap in rollouts, for one batch (``step_budget`` converts).

Examples
--------
>>> TopUpSettings(budget_per_prompt=6).step_budget(n_prompts=32)
192
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from v05._validation import check_number
from v05.budget.rule import OslaConfig


@dataclass(frozen=True)
class TopUpSettings:
    """The OSLA rule and a per-step rollout cap (checked when built)."""

    osla: OslaConfig = field(default_factory=OslaConfig)
    """The OSLA rule (``v05.budget.OslaConfig``: k_init, k_max, cost, variance, per_round, rule, max_rounds)."""
    budget_per_prompt: float | None = None
    """A step's rollout budget as a mean per prompt, first round included: a step draws at most
    floor(budget_per_prompt x its prompts) rollouts, the top-ups going to the largest expected gains first.
    At least k_init; None: only k_max caps."""

    def __post_init__(self):
        if not isinstance(self.osla, OslaConfig):
            raise TypeError(f"osla must be an OslaConfig; got {type(self.osla).__name__}")
        if self.budget_per_prompt is not None:
            check_number(self.budget_per_prompt, "budget_per_prompt", minimum=self.osla.k_init)

    def step_budget(self, n_prompts: int) -> int | None:
        """The cap in rollouts for a step of ``n_prompts`` prompts (``RolloutPlan``'s ``budget``), or None."""
        if self.budget_per_prompt is None:
            return None
        return math.floor(self.budget_per_prompt * n_prompts + 1e-9)  # 1e-9: a ratio that is an int times n
