"""Sequential rollout budgets: the OSLA rule (``rule``), the other rollout rules by name (``rules``) and a
rollout planner any trainer can drive (``plan``)."""

from v05.baselines.shrinkage import eb_gain, estimated_mse, expected_gain
from v05.budget.plan import Allocation, RolloutPlan, Round, allocate
from v05.budget.rule import DEFAULT_MAX_ROUNDS, RULES, OslaConfig, projected_extra, wants_more
from v05.budget.rule_base import PlanState, RolloutRule
from v05.budget.rules import check_rule_options, make_rule, rule_names, rule_options
from v05.budget.settings import TopUpSettings

__all__ = ["DEFAULT_MAX_ROUNDS", "RULES", "Allocation", "OslaConfig", "PlanState", "RolloutPlan", "RolloutRule", "Round",
           "TopUpSettings", "allocate", "check_rule_options", "eb_gain", "estimated_mse", "expected_gain", "make_rule",
           "projected_extra", "rule_names", "rule_options", "wants_more"]
