"""The estimator settings every trainer composes (the engine's ``method``, TRL's ``V05Config``, verl's
``algorithm.adv_estimator`` + ``+v05.options``), and the one dry run that checks them before training.

:func:`dry_run` runs the estimator once on a small batch shaped like a training step, so an unknown name, a
bad option or a group size the estimator is not defined on fails when the config is read, with the same
message in every trainer, not at the first step.

Examples
--------
>>> EstimatorSettings("grpo", {"std_scale": "none"}).dry_run(group_size=4, n_prompts=2)
>>> dry_run("rloo", group_size=1, n_prompts=2)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: estimator 'rloo' is not defined on groups of 1 rollout(s): group 0 has 1 rollout(s); ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from v05.baselines.batch import RewardScale
from v05.baselines.registry import UndefinedError, check_options, compute, get_estimator, list_estimators


def check_estimator(name, options=None, *, options_key: str = "estimator_options") -> dict:
    """The checked options of the estimator ``name`` (ValueError listing the known names if it is unknown;
    option errors are prefixed with ``options_key = {options}``, the setting the user wrote)."""
    if not isinstance(name, str) or name not in list_estimators(aliases=True):
        raise ValueError(f"estimator = {name!r} is unknown; known: {', '.join(list_estimators(aliases=True))}")
    try:
        return check_options(name, options)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{options_key} = {options!r}: {e}") from None


def dry_run(name: str, options=None, *, group_size: int, n_prompts: int = 2, scale="binary",
            options_key: str = "estimator_options") -> None:
    """Check ``name`` and ``options`` (:func:`check_estimator`), then run the estimator once on ``n_prompts``
    groups of ``group_size`` rollouts whose rewards alternate between the scale's ends, with priors 0.25 and
    0.75 (variance 0.01).

    Raises
    ------
    ValueError
        Unknown estimator, an option value out of range, or an estimator not defined on groups of this size
        (the message says what would make it defined).
    TypeError
        An option the estimator does not have, or of the wrong type.
    """
    checked = check_estimator(name, options, options_key=options_key)
    scale = RewardScale.parse(scale)
    group = np.repeat(np.arange(n_prompts), group_size)
    rewards = scale.from_unit((np.arange(len(group)) % 2).astype(float))
    prior = np.where(group % 2 == 0, 0.25, 0.75)
    try:
        compute(name, rewards, group, prior=prior, prior_var=np.full(len(group), 0.01), scale=scale, **checked)
    except UndefinedError as e:
        raise ValueError(f"estimator {name!r} is not defined on groups of {group_size} rollout(s): {e}") from None
    except (TypeError, ValueError) as e:
        raise type(e)(f"{options_key} = {options!r}: {e}") from None


@dataclass(frozen=True)
class EstimatorSettings:
    """Which baseline estimator a trainer uses, with its options (checked when built)."""

    estimator: str = "v05"
    """Baseline estimator, any name in ``v05.baselines.list_estimators(aliases=True)``: 'v05' (the default
    fusion), 'v05_paper', 'grpo', 'rloo', 'dapo'..."""
    estimator_options: dict = field(default_factory=dict)
    """Keyword options of that estimator (e.g. ``{"std_scale": "none"}`` for grpo, ``{"tau2": 0.01}`` for
    v05_eb); ``v05.baselines.get_estimator(name).options`` lists them."""

    def __post_init__(self):
        if not isinstance(self.estimator_options, Mapping):
            raise TypeError(f"estimator_options must be a table of options; got "
                            f"{type(self.estimator_options).__name__} {self.estimator_options!r}")
        check_estimator(self.estimator, self.estimator_options)

    @property
    def uses_prior(self) -> bool:
        """Whether the estimator fuses a prior."""
        return get_estimator(self.estimator).uses_prior

    @property
    def needs_prior_var(self) -> bool:
        """Whether the estimator weights the prior by its variance."""
        return get_estimator(self.estimator).needs_prior_var

    def dry_run(self, *, group_size: int, n_prompts: int = 2, scale="binary",
                options_key: str = "estimator_options") -> None:
        """:func:`dry_run` with these settings."""
        dry_run(self.estimator, self.estimator_options, group_size=group_size, n_prompts=n_prompts, scale=scale,
                options_key=options_key)
