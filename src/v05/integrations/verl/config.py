"""The ``+v05.*`` config group: V0.5's settings for a verl run, checked before training starts.

verl's ``algorithm`` section is a dataclass that refuses unknown keys, so V0.5 keeps its own top-level group
(all keys optional; defaults below)::

    +v05.prior_source=column            # column (the dataset's) | history (the run's own outcomes) | none
    +v05.prior_key=prior_value          # dataset column with each prompt's prior pass rate in [0, 1]
    +v05.prior_var_key=null             # column with its variance (v05_prior_var needs one)
    +v05.scale=binary                   # reward range: binary (0/1), pm1 (+-1) or [lo,hi]
    +v05.options.tau2=0.01              # the estimator's own keyword options
    +v05.rollouts.mode=osla             # fixed (rollout.n each) | static (a count column) | osla (top-ups)
    +v05.rollouts.n_key=rollout_n       # static: the dataset column with each prompt's rollout count
    +v05.rollouts.budget_per_prompt=null  # osla: a step's rollout cap, as a mean per prompt (null: only k_max)
    +v05.rollouts.block=1               # osla: top-ups come in multiples of this
    +v05.rollouts.osla.k_max=16         # any field of v05.budget.OslaConfig (max_rounds defaults to 2)
    +v05.rollouts.rule=osla             # osla: the rollout rule of mode=osla's planner (knapsack, dynamic...)
    +v05.rollouts.rule_options={k_max:16}  # that rule's options (docs/method.md 10); none under rule=osla

The estimator itself is verl's own knob, ``algorithm.adv_estimator`` (``v05``, ``v05_eb``, ``v05_grpo``...);
a ``v05``-prefixed name that is not one of ours is an error listing ours, verl's own names pass through.
The settings are the layers' own (``v05.baselines.dry_run`` checks the estimator and its options, as in the
engine and TRL; ``v05.budget.TopUpSettings`` holds the rule and the step cap). :func:`check_run` checks this
group and how it fits the rest of verl's config; errors name the key.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from v05._validation import check_choice, check_known_keys, check_positive_int
from v05.baselines import RewardScale, dry_run, get_estimator
from v05.budget import OslaConfig, TopUpSettings
from v05.budget.settings import smallest_first_round
from v05.budget.rule import K_MAX_LIMIT
from v05.integrations.verl.estimator import PREFIX, our_name, verl_names

MODES = ("fixed", "static", "osla")
PRIOR_SOURCES = ("column", "history", "none")
SAMPLER_PATH = "pkg://v05.integrations.verl.sampler"
SAMPLER_NAME = "V05ReplayBuffer"
TRAINER_MODE = "v05_sync"


def _plain(node):
    """An OmegaConf node (or anything) as plain Python containers."""
    try:
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover - verl always brings omegaconf
        return node
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _fields_of(cls, mapping, where: str) -> dict:
    mapping = _plain(mapping)
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{where} must be a group of keys; got {type(mapping).__name__} {mapping!r}")
    check_known_keys(mapping, [f.name for f in dataclasses.fields(cls)], where, prefix=f"{where}.")
    return dict(mapping)


def _check_str(value, where: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        raise TypeError(f"{where} must be a non-empty string{' or null' if optional else ''}; got {value!r}")


@dataclass(frozen=True)
class RolloutSettings(TopUpSettings):
    """How many rollouts each prompt gets (``+v05.rollouts.*``): ``osla`` and ``budget_per_prompt`` as in
    ``v05.budget.TopUpSettings``, plus verl's modes."""

    mode: str = "fixed"
    """'fixed': rollout.n each; 'static': a per-prompt count column; 'osla': the rollout planner, its first
    round then top-ups under ``rule`` (OSLA's: k_init, then top-ups; needs the V05ReplayBuffer sampler)."""
    n_key: str = "rollout_n"
    """static: the dataset column holding each prompt's rollout count."""
    block: int = 1
    """osla: every top-up is a multiple of this many rollouts."""

    @classmethod
    def from_mapping(cls, mapping, where: str = "v05.rollouts") -> "RolloutSettings":
        values = _fields_of(cls, _renamed(mapping, where), where)
        if "osla" in values:
            osla = {**dataclasses.asdict(OslaConfig()), **_fields_of(OslaConfig, values["osla"], f"{where}.osla")}
            try:
                values["osla"] = OslaConfig(**osla)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{where}.osla: {e}") from None
        try:
            out = cls(**values)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{where}.{e}") from None
        out.check(where)
        return out

    def check(self, where: str) -> None:
        check_choice(self.mode, f"{where}.mode", MODES)
        _check_str(self.n_key, f"{where}.n_key")
        check_positive_int(self.block, f"{where}.block")
        if self.rule == "osla":
            return
        if self.mode != "osla":
            raise ValueError(f"{where}.rule={self.rule} is read only with {where}.mode=osla (the rollout planner); "
                             f"mode is {self.mode!r}")
        if self.osla != OslaConfig():
            raise ValueError(f"{where}.osla is read only with {where}.rule=osla (the rule is {self.rule!r}: set its "
                             f"options in {where}.rule_options)")
        try:
            self.plan_rule().check_plan(1, None, self.block)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{where}.rule={self.rule} with {where}.rule_options={self.rule_options}: {e}") from None


RENAMED = {"budget": "budget_per_prompt"}
"""Old ``+v05.rollouts`` keys still read (with a warning), and their new names."""


def _renamed(mapping, where: str):
    mapping = _plain(mapping)
    if not isinstance(mapping, Mapping) or not set(mapping) & set(RENAMED):
        return mapping
    out = dict(mapping)
    for old, new in RENAMED.items():
        if old in out:
            if new in out:
                raise ValueError(f"{where}.{old} and {where}.{new} are both set; {old} is the old name of {new}")
            warnings.warn(f"{where}.{old} is now {where}.{new} (same meaning); the old name will be removed",
                          FutureWarning, stacklevel=3)
            out[new] = out.pop(old)
    return out


@dataclass(frozen=True)
class V05VerlConfig:
    """V0.5's settings for a verl run (``+v05.*``); see the module docstring."""

    prior_source: str = "column"
    """Where each prompt's prior comes from: 'column' (the dataset column ``prior_key``), 'history' (each
    prompt's Beta posterior of its own past outcomes in this run, ``v05.value.HistoryPrior``: the trainer
    writes it into the batch under ``prior_key`` before the planner and the estimator read it; no column
    needed) or 'none' (no prior, for the value-free estimators without osla)."""
    prior_key: str = "prior_value"
    """Dataset column with each prompt's prior pass rate in [0, 1] (carried to every rollout); under
    prior_source=history the field the run's own prior is written to."""
    prior_var_key: str | None = None
    """Dataset column with the prior's variance, for estimators that weight by it (v05_prior_var); read only
    with prior_source=column (history gives its own variance)."""
    scale: str | tuple = "binary"
    """The rewards' range: 'binary' (0/1), 'pm1' (+-1) or [lo, hi]."""
    options: dict = field(default_factory=dict)
    """The estimator's keyword options (e.g. tau2 for v05_eb)."""
    rollouts: RolloutSettings = RolloutSettings()

    @classmethod
    def from_mapping(cls, mapping, where: str = "v05") -> "V05VerlConfig":
        """Build and check the group from a mapping (an OmegaConf node or a dict; None gives the defaults)."""
        values = _fields_of(cls, mapping, where)
        if "rollouts" in values:
            values["rollouts"] = RolloutSettings.from_mapping(values["rollouts"], f"{where}.rollouts")
        if isinstance(values.get("scale"), list):
            values["scale"] = tuple(values["scale"])
        if values.get("options") is None:
            values["options"] = {}
        out = cls(**values)
        out.check(where)
        return out

    def check(self, where: str) -> None:
        check_choice(self.prior_source, f"{where}.prior_source", PRIOR_SOURCES)
        _check_str(self.prior_key, f"{where}.prior_key")
        _check_str(self.prior_var_key, f"{where}.prior_var_key", optional=True)
        if self.prior_source != "column" and self.prior_var_key is not None:
            raise ValueError(f"{where}.prior_var_key is read only with {where}.prior_source=column (it is "
                             f"{self.prior_source!r}: the history prior carries its own variance, none has none)")
        try:
            RewardScale.parse(self.scale)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}.scale={self.scale!r}: {e}") from None
        if not isinstance(self.options, Mapping):
            raise TypeError(f"{where}.options must be a group of the estimator's keyword options; got {self.options!r}")


def estimator_name(adv_estimator) -> str | None:
    """Our estimator behind verl's ``algorithm.adv_estimator``, or None for one of verl's own (``grpo``...).

    Raises
    ------
    ValueError
        A ``v05``-prefixed name that is not one of ours (the message lists ours), so a typo fails here rather
        than in a Ray worker.
    """
    adv = str(adv_estimator)
    name = our_name(adv)
    if name is None and adv.startswith(PREFIX):
        raise ValueError(f"algorithm.adv_estimator={adv!r} is not a V0.5 estimator; V0.5's in verl: "
                         f"{', '.join(sorted(verl_names()))} (verl's own names, e.g. grpo, pass through to verl)")
    return name


def _verl_checks(v05: V05VerlConfig, verl_config) -> None:
    """How the group fits verl's own settings (each error names the verl key and what to set)."""
    adv = str(verl_config.algorithm.adv_estimator)
    name = estimator_name(adv)
    mode = v05.rollouts.mode
    if name is None:
        if mode != "fixed" or v05.options:
            raise ValueError(f"algorithm.adv_estimator={adv!r} is verl's own estimator: v05.rollouts.mode must be "
                             "'fixed' and v05.options empty (use v05, v05_eb, v05_grpo... for V0.5's)")
        return
    if verl_config.algorithm.get("use_kl_in_reward", False):
        raise ValueError(f"algorithm.use_kl_in_reward=True puts a KL term into the rewards, which {adv!r} needs "
                         "inside v05.scale; use actor_rollout_ref.actor.use_kl_loss=True instead")
    if get_estimator(name).needs_prior_var and v05.prior_source == "column" and v05.prior_var_key is None:
        raise ValueError(f"algorithm.adv_estimator={adv!r} weights the prior by its variance: set v05.prior_var_key "
                         "(or use v05.prior_source=history)")
    if v05.prior_source == "none" and (get_estimator(name).uses_prior or mode == "osla"):
        why = f"algorithm.adv_estimator={adv!r} fuses a prior" if get_estimator(name).uses_prior else \
            "v05.rollouts.mode=osla plans top-ups from a prior"
        raise ValueError(f"v05.prior_source='none' gives no prior, but {why}; choose another v05.prior_source (e.g. "
                         "'history') or an estimator without a prior (e.g. 'v05_eb_batch', 'v05_grpo')")
    if mode == "osla":
        filter_groups = verl_config.algorithm.get("filter_groups", None)
        if filter_groups is not None and filter_groups.get("enable", False):
            raise ValueError("algorithm.filter_groups.enable=True is not applied by V05ReplayBuffer: "
                             "turn it off with v05.rollouts.mode=osla")
        reward_model = verl_config.reward.reward_model
        if reward_model.enable and not reward_model.get("enable_resource_pool", False):
            raise ValueError("v05.rollouts.mode=osla decides top-ups from rewards at sampling time: use a rule-based "
                             "reward or reward.reward_model.enable_resource_pool=True")
        sampler = verl_config.trainer.v1.sampler.get("custom_sampler", None) or {}
        if (sampler.get("path"), sampler.get("name")) != (SAMPLER_PATH, SAMPLER_NAME):
            raise ValueError(f"v05.rollouts.mode=osla needs trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH} "
                             f"and trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME}; got "
                             f"{sampler.get('path')!r} / {sampler.get('name')!r}")


def check_run(verl_config) -> V05VerlConfig:
    """The checked ``+v05`` group of a composed verl config (defaults where it is absent), with V0.5's
    estimator dry-run (``v05.baselines.dry_run``) on groups of a step's size: ``osla.k_init`` under
    mode=osla, ``rollout.n`` under fixed, 2 under static (the counts come from the data).

    Raises
    ------
    TypeError, ValueError
        A key of the group has a wrong type or value, ``algorithm.adv_estimator`` is a ``v05`` name that is not
        registered, or the group does not fit verl's settings (the message names the key and what is allowed).
    """
    v05 = V05VerlConfig.from_mapping(verl_config.get("v05", None))
    _verl_checks(v05, verl_config)
    name = estimator_name(verl_config.algorithm.adv_estimator)
    if name is not None:
        mode = v05.rollouts.mode
        k = {"osla": smallest_first_round(v05.rollouts.plan_rule()), "static": 2}.get(mode) or \
            int(verl_config.actor_rollout_ref.rollout.n)
        dry_run(name, v05.options, group_size=k, scale=v05.scale, options_key="v05.options")
    return v05


def check_static_counts(counts, where: str) -> np.ndarray:
    """Per-prompt rollout counts from a dataset column: ints in [1, K_MAX_LIMIT], else an error naming the row."""
    values = np.asarray(counts, dtype=object)
    for i, value in enumerate(values):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 1 <= value <= K_MAX_LIMIT:
            raise ValueError(f"{where}[{i}] = {value!r}: rollout counts must be ints in [1, {K_MAX_LIMIT}]")
    return values.astype(np.int64)
