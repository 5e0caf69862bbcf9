"""OSLA as a rollout rule (``docs/method.md`` 4): ``k_init`` rollouts for every prompt, then each round the
prompts whose expected MSE reduction from one more rollout exceeds its cost (``v05.budget.rule``) get
``per_round`` more (at least their projected need over the rounds left, under ``max_rounds``), the largest
reductions first when the budget is short."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from v05._validation import Choice, Integer, Number
from v05.baselines.shrinkage import VARIANCES
from v05.budget.rule import RULES, BatchState, OslaConfig, gains, projected_extra, wants
from v05.budget.rule_base import OrNone, PlanState, RolloutRule, block_error, minimum_budget_error


@dataclass(frozen=True)
class OslaRule(RolloutRule):
    """The OSLA stopping rule behind the planner; its one field is the :class:`OslaConfig` (whose own checks
    run when it is built)."""

    config: OslaConfig = field(default_factory=OslaConfig)

    name: ClassVar[str] = "osla"
    OPTIONS: ClassVar[dict] = {
        "k_init": Integer(1), "k_max": Integer(1), "cost": Number(minimum=0.0), "variance": Choice(VARIANCES),
        "per_round": Integer(1), "rule": Choice(RULES), "max_rounds": OrNone(Integer(0)),
    }
    """OslaConfig's fields, checked by name before the config is built."""

    @classmethod
    def from_options(cls, **options) -> OslaRule:
        """The rule with an ``OslaConfig`` of these fields (checked by OslaConfig itself)."""
        return cls(OslaConfig(**options))

    @property
    def k_max(self) -> int:
        return self.config.k_max

    @property
    def max_rounds(self) -> int | None:
        return self.config.max_rounds

    def check_plan(self, m: int, budget: int | None, block: int) -> None:
        if (self.config.k_max - self.config.k_init) % block:
            raise block_error(self.config.k_max, self.config.k_init, block)
        if budget is not None and budget < m * self.config.k_init:
            raise minimum_budget_error(budget, m, self.config.k_init, "k_init")

    def first_round(self, state: PlanState) -> np.ndarray:
        return np.full(len(state.prior), self.config.k_init, dtype=np.int64)

    def top_up(self, state: PlanState) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        batch = BatchState(state.means, state.counts, state.prior, state.prior_var)
        gain = gains(batch, cfg)
        want = wants(gain, state.counts, cfg)
        extra = np.where(want, cfg.per_round, 0).astype(np.int64)
        if cfg.max_rounds is not None:
            rounds_left = cfg.max_rounds - (state.rounds - 1)
            need = projected_extra(batch, cfg)
            extra = np.where(want, np.maximum(extra, -(-need // rounds_left)), 0)
        return extra, gain
