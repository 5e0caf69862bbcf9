"""Sequential rollout budgets: the OSLA rule (``rule``) and a rollout planner any trainer can drive (``plan``)."""

from v05.baselines.shrinkage import eb_gain, estimated_mse, expected_gain
from v05.budget.plan import Allocation, RolloutPlan, Round, allocate
from v05.budget.rule import RULES, OslaConfig, projected_extra, wants_more

__all__ = ["RULES", "Allocation", "OslaConfig", "RolloutPlan", "Round", "allocate", "eb_gain", "estimated_mse",
           "expected_gain", "projected_extra", "wants_more"]
