"""Policy-gradient baselines over flat rollouts (pure numpy): GRPO and rivals, and V0.5 prior fusions.

Every estimator is a kernel ``kernel(batch, **options)`` registered by name and reached through the checked
entry ``compute(name, rewards, group, *, prior=None, prior_var=None, scale="binary", **options) ->
Baselines``. ``"v05"`` names the default.
A prior is a :class:`Prior` (one row per prompt) or a per-rollout array. :func:`check_options` validates an
estimator's options without running it.
"""

from v05.baselines import empirical, fused, pooled  # noqa: F401  (registers the estimators)
from v05.baselines.batch import make_batch
from v05.baselines.fused import DEFAULT
from v05.baselines.prior import Prior
from v05.baselines.registry import (Baselines, UndefinedError, check_options, compute, get_estimator, list_estimators,
                                   resolve)
from v05.baselines.running import RunningMoments
from v05.baselines.scale import RewardScale
from v05.baselines.settings import EstimatorSettings, check_estimator, dry_run

__all__ = ["DEFAULT", "Baselines", "EstimatorSettings", "Prior", "RewardScale", "RunningMoments", "UndefinedError",
           "check_estimator", "check_options", "compute", "dry_run", "get_estimator", "list_estimators", "make_batch",
           "resolve"]
