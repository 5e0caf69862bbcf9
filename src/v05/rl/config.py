"""The training configuration: small frozen sections composed into one :class:`TrainConfig`.

Sections: ``method`` (the estimator, :class:`v05.baselines.EstimatorSettings`, and the allocation), ``osla``
(:class:`v05.budget.OslaConfig`, OSLA's own settings), ``optim``, ``policy`` (:class:`v05.rl.policy.PolicyConfig`),
``warmup``, ``prior`` (:class:`v05.value.ValuePriorSettings` and the prior's source), ``task``, ``eval`` and
``verifier`` (:class:`v05.rl.verifier.VerifierConfig`); the run-wide settings (seed, the run's length in
rollouts...) sit at the top. The lower layers' settings are declared there once, shared with TRL and verl.
Every field is documented once, under it in its class, and checked when its section is built;
:meth:`TrainConfig.__post_init__` adds the checks that span sections. Files and
``--set osla.k_max=16`` both go through :meth:`TrainConfig.from_dict`.

Examples
--------
>>> cfg = TrainConfig().with_settings({"method.allocation": "osla", "osla.k_max": 8})
>>> cfg.osla.k_max, cfg.group_size, cfg.needs_prior
(8, 4, True)
>>> TrainConfig.from_dict({"k_max": 8})
Traceback (most recent call last):
...
ValueError: setting 'k_max' is now osla.k_max (settings are grouped in sections; v05 train --show-config lists them)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from v05._validation import check_choice, check_known_keys, check_number, check_positive_int
from v05.baselines import EstimatorSettings
from v05.budget import OslaConfig
from v05.budget.settings import build_rule, check_rule_choice, smallest_first_round
from v05.rl.policy import PolicyConfig
from v05.rl.settings import merge, nest, read_settings_file, render_toml
from v05.rl.task import MAX_TERMS, MIN_TERMS
from v05.rl.verifier import VerifierConfig
from v05.value import ValuePriorSettings

ALLOCATIONS = ("fixed", "osla", "dynamic")
STREAMS = ("epochs", "fresh")
PRIOR_SOURCES = ("value_model", "exact", "history", "none")
LOSS_AGGS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
DEFAULT_GROUP_SIZE = 4


@dataclass(frozen=True)
class MethodConfig(EstimatorSettings):
    """What a step trains on: the baseline estimator (``v05.baselines.EstimatorSettings``: estimator,
    estimator_options), and how many rollouts each prompt gets."""

    allocation: str = "fixed"
    """'fixed' (group_size rollouts per prompt), 'osla' (osla.k_init per prompt, then OSLA's top-ups in
    rounds, as the osla section says) or 'dynamic' (DAPO's dynamic sampling: groups whose rewards are all
    equal are dropped and fresh prompts drawn until prompts_per_step groups are kept)."""
    group_size: int | None = None
    """Rollouts per prompt under 'fixed' and 'dynamic' (unset: 4). Leave unset under 'osla': its first round
    gives every prompt osla.k_init."""
    prompts_per_step: int = 32
    """Prompts per training step (groups kept, under 'dynamic')."""
    max_resample_rounds: int = 8
    """'dynamic': at most this many extra draws of prompts_per_step prompts per step; if the batch is still
    short after them, the step trains on the groups kept."""
    rollout_rule: str = "osla"
    """The rule of allocation='osla''s rollout planner: 'osla' (the osla section), 'reinforce_ada', 'knapsack',
    'cures' or 'dynamic' (docs/method.md 10; the same rules as TRL's rollout_rule and verl's +v05.rollouts.rule).
    Read under allocation='osla' only. Under 'reinforce_ada' the estimator runs on each prompt's whole pool and
    the update keeps the n rollouts a prompt the rule picks."""
    rollout_rule_options: dict = field(default_factory=dict)
    """That rule's options (e.g. {k_max = 16}); empty under 'osla', set by the osla section."""

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.allocation, "allocation", ALLOCATIONS)
        check_rule_choice(self.rollout_rule, self.rollout_rule_options, "rollout_rule", "rollout_rule_options")
        if self.allocation != "osla" and (self.rollout_rule, self.rollout_rule_options) != ("osla", {}):
            raise ValueError(f"rollout_rule {self.rollout_rule!r} is read only with allocation='osla' (the rollout "
                             f"planner); allocation is {self.allocation!r}")
        if self.group_size is not None:
            check_positive_int(self.group_size, "group_size")
        check_positive_int(self.prompts_per_step, "prompts_per_step")
        check_positive_int(self.max_resample_rounds, "max_resample_rounds", minimum=0)
        if self.allocation == "osla" and self.group_size is not None:
            raise ValueError(f"group_size == {self.group_size} is not used with allocation='osla': its first round "
                             "is osla.k_init; set that and leave group_size unset")
        if self.allocation == "dynamic" and self.group_size == 1:
            raise ValueError("group_size == 1 with allocation='dynamic': a lone rollout's group is always "
                             "all-equal and dropped; must be >= 2")
        if self.allocation == "dynamic" and self.uses_prior:
            raise ValueError(f"allocation='dynamic' with estimator {self.estimator!r}: dynamic sampling draws prompts "
                             "inside the step, so it supports only estimators without a prior (e.g. 'dapo')")


@dataclass(frozen=True)
class OptimConfig:
    """The clipped policy-gradient update of each step."""

    lr: float = 3e-4
    """Adam learning rate of the RL phase."""
    n_minibatches: int = 2
    """Optimizer steps per pass over the step's batch (the batch split into this many minibatches)."""
    ppo_epochs: int = 1
    """Passes over the batch per training step."""
    clip_low: float = 0.2
    """Ratio clipping below: 1 - clip_low (in [0, 1))."""
    clip_high: float = 0.2
    """Ratio clipping above: 1 + clip_high (DAPO's clip-higher uses 0.28)."""
    loss_agg: str = "token-mean"
    """Loss aggregation: 'token-mean' (DAPO), 'seq-mean-token-mean' (GRPO), 'seq-mean-token-sum-norm' (Dr. GRPO)."""
    kl_coef: float = 0.0
    """Weight of the k3 KL estimate to the warm-up (reference) policy; 0 disables it."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping threshold (the logged norm is the one before clipping)."""

    def __post_init__(self):
        check_number(self.lr, "lr", minimum=0.0, min_open=True)
        check_positive_int(self.n_minibatches, "n_minibatches")
        check_positive_int(self.ppo_epochs, "ppo_epochs")
        check_number(self.clip_low, "clip_low", minimum=0.0)
        if self.clip_low >= 1:
            raise ValueError(f"clip_low == {self.clip_low!r}, must be < 1 (the ratio is clipped below at 1 - clip_low)")
        check_number(self.clip_high, "clip_high", minimum=0.0)
        check_choice(self.loss_agg, "loss_agg", LOSS_AGGS)
        check_number(self.kl_coef, "kl_coef", minimum=0.0)
        check_number(self.max_grad_norm, "max_grad_norm", minimum=0.0, min_open=True)


@dataclass(frozen=True)
class WarmupConfig:
    """The supervised warm-up that starts every run (cached, and shared by runs with the same task and policy)."""

    steps: int = 300
    """Supervised steps (few, so pass rates start between 0 and 1)."""
    batch: int = 128
    """Minibatch size."""
    lr: float = 3e-3
    """Adam learning rate."""
    max_terms: int = MAX_TERMS
    """Longest chain in the warm-up's data (2 to 8 terms). Below 8 the policy learns short chains well and
    longer ones partly or not at all, so its pass rates pile up near 0 and 1 (docs/rl.md, "Regime map")."""

    def __post_init__(self):
        check_positive_int(self.steps, "steps", minimum=0)
        check_positive_int(self.batch, "batch")
        check_number(self.lr, "lr", minimum=0.0, min_open=True)
        check_positive_int(self.max_terms, "max_terms", minimum=MIN_TERMS)
        if self.max_terms > MAX_TERMS:
            raise ValueError(f"max_terms == {self.max_terms}, must be <= {MAX_TERMS} (the task's longest chain)")


@dataclass(frozen=True)
class PriorConfig(ValuePriorSettings):
    """The prior: the frozen value model (``v05.value.ValuePriorSettings``: value_model, context_size,
    history_steps, history_block, osla_var_floor) reading the run's own outcome history, each prompt's own past
    outcomes, the exact oracle, or none."""

    source: str = "value_model"
    """'value_model' (the frozen value model above) or 'exact': the current policy's exact pass rate on each
    prompt, the teacher-forced probability of the one rewarded response (``v05.rl.exact``; the built-in
    task only). 'exact' is an oracle, the best any prior can be, for benchmarks; its variance is 0. 'history':
    each prompt's Beta posterior of its own past outcomes around a Beta prior fitted on the whole history
    (``v05.value.HistoryPrior``; no value model). 'none': no prior, for estimators that fuse none and no OSLA."""

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.source, "source", PRIOR_SOURCES)


@dataclass(frozen=True)
class TaskConfig:
    """The built-in arithmetic task (:class:`v05.rl.task.ArithmeticTask`)."""

    seed: int = 0
    """Seed of the task (training pool, held-out set) and of the warm-up; equal across compared runs."""
    n_train: int = 1024
    """Size of the training pool (read in epochs, so prompts recur)."""
    n_eval: int = 256
    """Size of the held-out evaluation set."""
    stream: str = "epochs"
    """'epochs': the pool is read in epochs, so prompts recur and the value model sees their outcome history.
    'fresh': every prompt is read once (one-epoch training, no outcome history for any prompt); n_train must
    then cover every prompt the run can read."""

    def __post_init__(self):
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.n_train, "n_train")
        check_positive_int(self.n_eval, "n_eval")
        check_choice(self.stream, "stream", STREAMS)


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation, and the probe that re-measures true pass rates to score the baseline."""

    every_rollouts: int = 1000
    """Evaluate each time the rollouts spent cross another multiple of this (and at the end)."""
    samples: int = 4
    """Samples per held-out prompt (accuracy = mean reward)."""
    probe_every: int = 0
    """Every this many steps, re-sample probe_samples rollouts per batch prompt to measure its true pass rate
    and the baseline's error against it (not counted in the budget); 0 disables."""
    probe_samples: int = 64
    """Rollouts per prompt of that measurement."""

    def __post_init__(self):
        check_positive_int(self.every_rollouts, "every_rollouts")
        check_positive_int(self.samples, "samples")
        check_positive_int(self.probe_every, "probe_every", minimum=0)
        check_positive_int(self.probe_samples, "probe_samples")


SECTIONS: dict[str, type] = {"method": MethodConfig, "osla": OslaConfig, "optim": OptimConfig, "policy": PolicyConfig,
                             "warmup": WarmupConfig, "prior": PriorConfig, "task": TaskConfig, "eval": EvalConfig,
                             "verifier": VerifierConfig}
"""Section name -> its dataclass."""

MOVED = {
    **{k: f"method.{k}" for k in ("estimator", "estimator_options", "allocation", "prompts_per_step", "max_resample_rounds")},
    "group_size": "method.group_size (osla.k_init under allocation='osla')", "dynamic_sampling": "method.allocation='dynamic'",
    "k_max": "osla.k_max", "osla_cost": "osla.cost", "osla_variance": "osla.variance", "osla_rule": "osla.rule",
    "osla_per_round": "osla.per_round", "osla_prior_var": "prior.osla_var_floor",
    **{k: f"prior.{k}" for k in ("value_model", "context_size", "history_steps", "history_block")},
    **{k: f"optim.{k}" for k in ("lr", "n_minibatches", "ppo_epochs", "clip_low", "clip_high", "loss_agg", "kl_coef",
                                 "max_grad_norm")},
    **{k: f"policy.{k}" for k in ("d_embed", "d_hidden", "n_layers")},
    "warmup_steps": "warmup.steps", "warmup_batch": "warmup.batch", "warmup_lr": "warmup.lr",
    "task_seed": "task.seed", "n_train_prompts": "task.n_train", "n_eval_prompts": "task.n_eval",
    "eval_every_rollouts": "eval.every_rollouts", "eval_samples": "eval.samples", "probe_every": "eval.probe_every",
    "probe_samples": "eval.probe_samples",
}
"""Keys of the flat config before sections, and where each lives now (refused with that message)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one RL run on the built-in task (same config + seed = same run).

    Examples
    --------
    >>> TrainConfig(method=MethodConfig(estimator="grpo", group_size=16)).rollouts_per_step_min
    512
    >>> TrainConfig.from_dict({"method": {"group_size": 0}})
    Traceback (most recent call last):
    ...
    ValueError: method.group_size == 0, must be >= 1
    """

    seed: int = 0
    """Seed of the RL phase (prompt order, sampling, minibatch order)."""
    total_rollouts: int = 20000
    """The run's length in rollouts: stop once this many (every rollout drawn, dropped ones included) have been
    spent."""
    temperature: float = 1.0
    """Sampling temperature of rollouts and evaluation."""
    checkpoint_every: int = 50
    """Write a checkpoint every this many steps (and at the end); 0 writes only the final one."""
    threads: int = 1
    """torch intra-op and BLAS threads (tiny ops: more threads only add synchronisation, and an idle BLAS
    thread spins, taking a core from the sampling and the update)."""
    method: MethodConfig = field(default_factory=MethodConfig)
    """Estimator and allocation."""
    osla: OslaConfig = field(default_factory=OslaConfig)
    """OSLA's rule (``v05.budget.OslaConfig``, its defaults the same in every trainer), read under
    method.allocation='osla' only."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """The policy update."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Sizes of the GRU policy (``v05.rl.policy.PolicyConfig``)."""
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    """The supervised warm-up."""
    prior: PriorConfig = field(default_factory=PriorConfig)
    """The value model's prior."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """The built-in task."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation and probes."""
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    """RL^V: the policy as its own verifier (``v05.rl.verifier.VerifierConfig``)."""

    def __post_init__(self):
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"{name} must be a {cls.__name__}; got {type(getattr(self, name)).__name__} "
                                "(TrainConfig.from_dict builds sections from plain values)")
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.total_rollouts, "total_rollouts")
        check_number(self.temperature, "temperature", minimum=0.0, min_open=True)
        check_positive_int(self.checkpoint_every, "checkpoint_every", minimum=0)
        check_positive_int(self.threads, "threads")
        self._check_sections_agree()
        self._check_estimator_runs()

    def _check_sections_agree(self) -> None:
        osla = self.method.allocation == "osla"
        if not osla and self.osla != OslaConfig():
            raise ValueError(f"osla settings are read only with method.allocation='osla' "
                             f"(allocation is {self.method.allocation!r})")
        if self.method.rollout_rule != "osla" and self.osla != OslaConfig():
            raise ValueError(f"osla settings are read only with method.rollout_rule='osla' (the rule is "
                             f"{self.method.rollout_rule!r}: set its options in method.rollout_rule_options)")
        if not osla and self.prior.osla_var_floor:
            raise ValueError("prior.osla_var_floor = true needs method.allocation='osla'")
        if self.prior.source == "none" and self.needs_prior:
            why = (f"method.estimator={self.method.estimator!r} fuses a prior" if self.method.uses_prior
                   else "method.allocation='osla' plans top-ups from a prior")
            raise ValueError(f"prior.source='none' gives no prior, but {why}; choose another prior.source "
                             "(e.g. 'history') or an estimator without a prior (e.g. 'eb_batch', 'grpo')")
        if self.method.prompts_per_step > self.task.n_train:
            raise ValueError(f"method.prompts_per_step ({self.method.prompts_per_step}) must be <= task.n_train "
                             f"({self.task.n_train})")
        if self.total_rollouts < self.rollouts_per_step_min:
            raise ValueError(f"total_rollouts ({self.total_rollouts}) is below one step's rollouts "
                             f"(prompts_per_step x group size = {self.rollouts_per_step_min})")
        if self.task.stream == "fresh" and self.task.n_train < self.prompts_read_max:
            raise ValueError(f"task.stream='fresh' reads every prompt once: task.n_train ({self.task.n_train}) must be "
                             f">= the prompts this run can read ({self.prompts_read_max}: total_rollouts / group size, "
                             "in whole steps, plus dynamic sampling's extra draws)")

    def _check_estimator_runs(self) -> None:
        """The estimator's dry run (``v05.baselines.dry_run``) on a step-shaped batch: prompts_per_step groups of
        group_size rollouts, so that a group size or option it is not defined for fails now, not at step 1."""
        self.method.dry_run(group_size=self.group_size, n_prompts=self.method.prompts_per_step,
                            options_key="method.estimator_options")

    @property
    def group_size(self) -> int:
        """Rollouts every prompt gets in a step's first round (``osla.k_init`` under OSLA; under another rollout
        rule, its first-round option, or ``k_min`` for a split planned in one round)."""
        if self.method.allocation == "osla":
            return smallest_first_round(self.plan_rule)
        return DEFAULT_GROUP_SIZE if self.method.group_size is None else self.method.group_size

    @property
    def plan_rule(self) -> OslaConfig | Any:
        """What allocation='osla''s :class:`v05.budget.RolloutPlan` runs: the osla section under rollout_rule
        'osla' (plans bit-identical to before rules had names), else the named rule with its options."""
        return build_rule(self.method.rollout_rule, self.method.rollout_rule_options, self.osla)

    @property
    def rollouts_per_step_min(self) -> int:
        """Rollouts of one step before any top-up or resampling."""
        return self.method.prompts_per_step * self.group_size

    @property
    def prompts_read_max(self) -> int:
        """Most prompts the run can read from its stream: every step spends at least prompts_per_step x group
        size rollouts per draw of prompts, and the last step may add dynamic sampling's extra draws."""
        m = self.method.prompts_per_step
        steps = -(-self.total_rollouts // self.rollouts_per_step_min)
        extra = self.method.max_resample_rounds if self.method.allocation == "dynamic" else 0
        return m * (steps + extra)

    @property
    def needs_prior(self) -> bool:
        """Whether the run queries the value model (the estimator fuses a prior, or OSLA allocates)."""
        return self.method.uses_prior or self.method.allocation == "osla"

    def to_dict(self) -> dict:
        """Plain JSON-able nested dict of every setting (sections as sub-dicts)."""
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """Every setting as TOML, each under its documentation (``v05 train --show-config``)."""
        return render_toml(self, "v05 train settings (TrainConfig). Pass a file like this one with --config, "
                                 "or change single settings with --set section.key=value (e.g. --set osla.k_max=16).")

    def with_settings(self, settings: Mapping[str, Any], *, source: str | None = None) -> "TrainConfig":
        """A copy with dotted settings changed (``{"osla.k_max": 16}``), checked again."""
        return TrainConfig.from_dict(merge(self.to_dict(), nest(settings)), source=source)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str | None = None) -> "TrainConfig":
        """Build from nested plain values (sections as dicts): the one door for files and ``--set``.

        Unknown keys raise ``ValueError`` naming the known ones; keys of the old flat config raise naming
        their new place; every error is prefixed with ``source`` (e.g. the file) when given.
        """
        try:
            if not isinstance(data, Mapping):
                raise TypeError(f"settings must be a table; got {type(data).__name__}")
            kwargs = {key: _setting(key, value) for key, value in data.items()}
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{source}: {e}" if source else str(e)) from None

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        """Read a ``.json`` or ``.toml`` file of settings (sections as tables)."""
        return cls.from_dict(read_settings_file(path), source=f"config file {path}")


TOP_LEVEL = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in SECTIONS)


def _setting(key: str, value):
    """One top-level entry of a settings dict: a scalar, or a section built from its table."""
    if key in SECTIONS:
        return _section(key, value)
    if key in TOP_LEVEL:
        return value
    if key in MOVED:
        raise ValueError(f"setting {key!r} is now {MOVED[key]} (settings are grouped in sections; "
                         "v05 train --show-config lists them)")
    raise ValueError(f"unknown setting {key!r}; top-level settings: {list(TOP_LEVEL)}; sections: {list(SECTIONS)}")


def _section(name: str, values):
    cls = SECTIONS[name]
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise TypeError(f"{name} must be a table of settings ({name}.key = value); got {type(values).__name__} {values!r}")
    check_known_keys(values, [f.name for f in dataclasses.fields(cls)], name, prefix=f"{name}.")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}.{e}") from None
