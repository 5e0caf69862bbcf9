"""Sequential rollout budgets: the OSLA rule (``rule``) and a rollout planner any trainer can drive (``plan``)."""

from v05.baselines.shrinkage import eb_gain, estimated_mse, expected_gain
from v05.budget.plan import Allocation, RolloutPlan, Round, allocate
from v05.budget.rule import DEFAULT_MAX_ROUNDS, RULES, OslaConfig, projected_extra, wants_more
from v05.budget.settings import TopUpSettings

__all__ = ["DEFAULT_MAX_ROUNDS", "RULES", "Allocation", "OslaConfig", "RolloutPlan", "Round", "TopUpSettings", "allocate",
           "eb_gain", "estimated_mse", "expected_gain", "projected_extra", "wants_more"]
