"""One registry of baseline estimators, one signature, one validated entry point.

An estimator is written as a kernel over a validated :class:`~v05.baselines.batch.Batch`; ``register``
records it unchanged (the module-level function stays the kernel, with its own signature, as verl's
``core_algos`` registers its functions) and stores beside it the checked public function
``fn(rewards, group, *, prior=None, prior_var=None, scale="binary", **its own keyword options) -> Baselines``.
Every caller, our own loop included, goes through :func:`compute` (or ``get_estimator(name).fn``).

Each estimator declares its keyword options' checks when it registers (``options={"eps": Number(...)}``),
so :func:`check_options` can validate a configuration (``TrainConfig.estimator_options``, a framework
adapter's settings) before any rollout exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from v05._validation import Choice, Flag, Integer, Number
from v05.baselines.batch import PRIOR_CARRIES_VAR, Batch, make_batch
from v05.baselines.prior import Prior

OptionSpec = Union[Choice, Number, Integer, Flag]
"""A declared option check: ``spec.check(value, name)`` returns the checked value or raises."""


class UndefinedError(ValueError):
    """The estimator is not defined on this batch's group structure (e.g. RLOO on a lone rollout, or an
    empirical-Bayes fit with no group of >= 2 rollouts). The message says what would make it defined."""


@dataclass(frozen=True)
class Baselines:
    """What an estimator returns, one entry per rollout (shape (n,)).

    Attributes
    ----------
    baseline : the baseline b on the reward scale.
    advantage : r - b, divided by a std where the estimator scales (GRPO, REINFORCE++).
    weight : weight on the empirical mean in a prior fusion (1 = ignore the prior), or None.
    keep : False for rollouts a filter drops (DAPO); all True otherwise.
    """

    baseline: np.ndarray
    advantage: np.ndarray
    weight: np.ndarray | None
    keep: np.ndarray


@dataclass(frozen=True)
class KernelOut:
    """A kernel's result on the unit scale; ``scale_by`` (reward units) divides the advantage."""

    baseline: np.ndarray
    weight: np.ndarray | None = None
    keep: np.ndarray | None = None
    scale_by: np.ndarray | float | None = None


@dataclass(frozen=True)
class Estimator:
    """A registry entry: the kernel as written, the checked public function around it, and what it needs.

    ``options`` maps each keyword option to its declared check, in the kernel's order; ``defaults`` holds
    the kernel's default values.
    """

    name: str
    fn: Callable[..., Baselines]
    kernel: Callable[..., KernelOut]
    uses_prior: bool
    needs_prior_var: bool
    min_group_size: int
    options: dict[str, OptionSpec] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)


_REGISTRY: dict[str, Estimator] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *, uses_prior: bool = False, needs_prior_var: bool = False, min_group_size: int = 1,
             options: Mapping[str, OptionSpec] | None = None):
    """Decorator: register a kernel ``kernel(batch, **options) -> KernelOut`` under ``name``; returns the
    kernel unchanged.

    ``options`` declares the check of each of the kernel's keyword options (exactly those: a mismatch fails
    at import); :func:`check_options` runs them before any batch is built.
    """
    declared = dict(options or {})

    def wrap(kernel: Callable[..., KernelOut]) -> Callable[..., KernelOut]:
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"estimator name {name!r} is already registered")
        params = {p.name: p.default for p in inspect.signature(kernel).parameters.values() if p.name != "batch"}
        if set(params) != set(declared):
            raise TypeError(f"estimator {name!r}: the kernel's options {sorted(params)} differ from the declared "
                            f"checks {sorted(declared)}")

        def estimator(rewards, group, *, prior=None, prior_var=None, scale="binary", **kwargs) -> Baselines:
            checked = check_options(name, kwargs)
            per_group = isinstance(prior, Prior)
            if uses_prior and prior is None:
                raise ValueError(f"{name} fuses a prior: pass prior= (a Prior, one row per prompt, or per-rollout "
                                 "pass rates in [0, 1])")
            if needs_prior_var and (prior.var is None if per_group else prior_var is None):
                raise ValueError(f"{name} weights the prior by its variance: pass prior_var= (per rollout, >= 0) "
                                 "with a per-rollout prior, or give the Prior a var (Prior(mean, var))")
            if per_group and prior_var is not None:
                raise TypeError(PRIOR_CARRIES_VAR)
            batch = make_batch(rewards, group, prior=prior if uses_prior else None,
                               prior_var=prior_var if needs_prior_var else None, scale=scale)
            if min_group_size > 1:
                _check_group_sizes(batch, name, min_group_size)
            return _finish(batch, kernel(batch, **checked))

        estimator.__name__ = name
        estimator.__qualname__ = name
        estimator.__doc__ = kernel.__doc__
        _REGISTRY[name] = Estimator(name, estimator, kernel, uses_prior, needs_prior_var, min_group_size,
                                    {p: declared[p] for p in params}, params)
        return kernel

    return wrap


def check_options(name: str, options: Mapping | None) -> dict:
    """Check an estimator's keyword options without running it: names, types and values.

    Parameters
    ----------
    name : str
        A registered estimator name or alias (``"v05"``).
    options : dict or None
        Option name -> value, as it would be passed to :func:`compute`.

    Returns
    -------
    dict
        The same options with their checked values (numbers as Python ``int``/``float``).

    Raises
    ------
    TypeError
        ``options`` is not a dict, names an option the estimator does not have (the message lists its
        options), or a value of the wrong type (``tau2="abc"``).
    ValueError
        An unknown estimator, or a value out of range (``eps=0``, ``std_scale="groups"``).

    Examples
    --------
    >>> check_options("grpo", {"std_scale": "batch", "eps": 1e-4})
    {'std_scale': 'batch', 'eps': 0.0001}
    """
    entry = get_estimator(name)
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{name} options must be a dict of option name -> value; got {type(options).__name__} "
                        f"{options!r}")
    unknown = sorted(str(k) for k in options if k not in entry.options)
    if unknown:
        raise TypeError(f"{name} got unknown option(s) {unknown}; its options: {list(entry.options)}")
    return {k: entry.options[k].check(v, f"{name}: {k}") for k, v in options.items()}


def register_alias(alias: str, target: str) -> None:
    """Make ``alias`` resolve to the registered estimator ``target`` (e.g. ``"v05"``)."""
    if alias in _REGISTRY or alias in _ALIASES:
        raise ValueError(f"estimator name {alias!r} is already registered")
    if target not in _REGISTRY:
        raise ValueError(f"cannot alias {alias!r} to unknown estimator {target!r}")
    _ALIASES[alias] = target


def _check_group_sizes(batch: Batch, name: str, minimum: int) -> None:
    small = np.flatnonzero(batch.counts < minimum)
    if len(small):
        g = small[0]
        raise UndefinedError(
            f"group {batch.label(g)!r} has {batch.counts[g]} rollout(s); {name} needs >= {minimum} "
            f"({len(small)} group(s) too small)"
        )


def _finish(batch: Batch, out: KernelOut) -> Baselines:
    """Map the kernel's unit-scale baseline to rewards and form the advantages.

    The advantage is taken on the unit scale and then stretched, so r = b gives exactly 0 on any scale.
    """
    baseline = batch.scale.from_unit(out.baseline)
    advantage = batch.scale.width * (batch.y - out.baseline)
    if out.scale_by is not None:
        advantage = advantage / out.scale_by
    keep = np.ones(len(batch.y), dtype=bool) if out.keep is None else out.keep
    return Baselines(baseline, advantage, out.weight, keep)


def resolve(name: str) -> str:
    """The registered name behind ``name`` (aliases resolved)."""
    return _ALIASES.get(name, name)


def get_estimator(name: str) -> Estimator:
    """The registry entry for ``name``; unknown names list the known ones."""
    key = resolve(name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(list_estimators(aliases=True))}")
    return _REGISTRY[key]


def list_estimators(*, aliases: bool = False) -> list[str]:
    """Registered estimator names, sorted (with aliases if asked)."""
    return sorted(list(_REGISTRY) + (list(_ALIASES) if aliases else []))


def compute(name: str, rewards, group, *, prior=None, prior_var=None, scale="binary", **options) -> Baselines:
    """Run the estimator ``name`` on flat ``rewards`` grouped by ``group``.

    Parameters
    ----------
    rewards : array-like of shape (n,)
        One reward per rollout, inside ``scale``.
    group : array-like of shape (n,)
        The prompt each rollout belongs to (any ints or strings); groups may be ragged and unordered.
    prior : Prior or array-like of shape (n,), optional
        The prior pass rate in [0, 1] of each prompt: a :class:`~v05.baselines.prior.Prior` (one row per
        prompt, with its variance; row g is group id g, or the row whose id is g when it has ``ids``), or one
        value per rollout (constant within a group). Needed by the fused estimators, ignored by the others.
    prior_var : array-like of shape (n,), optional
        Variance of a per-rollout prior (pass-rate units), for ``v05_prior_var``; a ``Prior`` carries its own.
    scale : {"binary", "pm1"} or (lo, hi)
        The rewards' range; fixes the worst-case variance and maps the prior onto the reward scale.
    **options
        The estimator's own keyword options (unknown ones raise ``TypeError``).

    Examples
    --------
    >>> res = compute("rloo", [1.0, 0.0, 1.0, 0.0], ["a", "a", "b", "b"])
    >>> res.baseline.tolist(), res.advantage.tolist()
    ([0.0, 1.0, 0.0, 1.0], [1.0, -1.0, 1.0, -1.0])
    >>> from v05.baselines import Prior
    >>> compute("prior", [1.0, 0.0, 1.0], ["a", "a", "b"], prior=Prior([0.25, 0.75], ids=["a", "b"])).baseline.tolist()
    [0.25, 0.25, 0.75]
    """
    return get_estimator(name).fn(rewards, group, prior=prior, prior_var=prior_var, scale=scale, **options)
