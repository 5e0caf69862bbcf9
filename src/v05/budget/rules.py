"""The rollout rules behind :class:`v05.budget.RolloutPlan`, chosen by name like an estimator, with declared and
checked options (``docs/method.md`` 10):

- ``osla``: V0.5's one-step look-ahead (``rule='paper'`` or ``'eb'``), the default;
- ``reinforce_ada``: rounds until a prompt's exit condition holds (``exit='balanced'`` or ``'positive_focused'``);
- ``knapsack``: Knapsack RL's split of the budget by the value of N rollouts at the prior pass rate;
- ``cures``: CurES's Beta-posterior sampling weight as a split of the budget;
- ``dynamic``: DAPO's dynamic sampling, all-equal groups drawn again.

    plan = RolloutPlan(prior, make_rule("knapsack", {"k_max": 32}), budget=8 * len(prior))
"""

from __future__ import annotations

from collections.abc import Mapping

from v05.budget.cures import CurES
from v05.budget.dynamic import DynamicSampling
from v05.budget.knapsack import Knapsack
from v05.budget.osla import OslaRule
from v05.budget.reinforce_ada import ReinforceAda
from v05.budget.rule_base import RolloutRule

_RULES: dict[str, type[RolloutRule]] = {cls.name: cls for cls in
                                        (OslaRule, ReinforceAda, Knapsack, CurES, DynamicSampling)}


def rule_names() -> list[str]:
    """The registered rule names, in registration order."""
    return list(_RULES)


def rule_options(name: str) -> dict:
    """Option name -> its declared check, for the rule ``name``."""
    return dict(_rule_class(name).OPTIONS)


def check_rule_options(name: str, options: Mapping | None) -> dict:
    """Check a rule's options without building it: names (unknown ones raise ``TypeError`` listing the rule's
    options), types and values; returns them checked (numbers as Python ints and floats).

    >>> check_rule_options("reinforce_ada", {"exit": "positive_focused"})
    {'exit': 'positive_focused'}
    """
    cls = _rule_class(name)
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{name} options must be a dict of option name -> value; got {type(options).__name__}")
    unknown = sorted(str(k) for k in options if k not in cls.OPTIONS)
    if unknown:
        raise TypeError(f"rollout rule {name} got unknown option(s) {unknown}; its options: {list(cls.OPTIONS)}")
    return {k: cls.OPTIONS[k].check(v, f"{name}: {k}") for k, v in options.items()}


def make_rule(name: str, options: Mapping | None = None) -> RolloutRule:
    """The rule ``name`` with ``options`` (checked first; the rest at their defaults).

    >>> make_rule("osla", {"rule": "eb"}).config.rule
    'eb'
    >>> make_rule("knapsack", {"k_mx": 8})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: rollout rule knapsack got unknown option(s) ['k_mx']; its options: ['k_min', 'k_max', ...]
    """
    checked = check_rule_options(name, options)
    cls = _rule_class(name)
    return cls.from_options(**checked)


def _rule_class(name: str) -> type[RolloutRule]:
    if name not in _RULES:
        raise ValueError(f"unknown rollout rule {name!r}; known: {', '.join(_RULES)}")
    return _RULES[name]
