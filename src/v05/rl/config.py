"""The training configuration: one frozen dataclass, every field documented once and checked when built.

``TrainConfig.from_file`` reads JSON or TOML; unknown keys and bad values raise before any training starts.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v05.baselines import UndefinedError, compute, get_estimator, list_estimators
from v05.budget import RULES as OSLA_RULES
from v05.baselines.shrinkage import VARIANCES as OSLA_VARIANCES
from v05.budget import OslaConfig

ALLOCATIONS = ("fixed", "osla")
LOSS_AGGS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one RL run on the built-in arithmetic task (same config + seed = same run).

    Examples
    --------
    >>> TrainConfig(estimator="grpo", group_size=16).rollouts_per_step_min
    512
    >>> TrainConfig(group_size=0)
    Traceback (most recent call last):
    ...
    ValueError: group_size = 0: must be >= 1
    """

    # --- method
    estimator: str = "v05"
    """Baseline estimator, any name in ``v05.baselines.list_estimators(aliases=True)``."""
    estimator_options: dict = field(default_factory=dict)
    """Keyword options of that estimator (e.g. ``{"std_scale": "none"}`` for grpo)."""
    allocation: str = "fixed"
    """'fixed' (group_size rollouts per prompt) or 'osla' (group_size = k_init, then OSLA top-ups)."""
    group_size: int = 4
    """Rollouts per prompt (fixed) or k_init (osla)."""
    k_max: int = 16
    """OSLA's maximum rollouts per prompt."""
    osla_cost: float = 0.0039
    """OSLA's cost of one rollout, in squared +-1 reward units (the paper's c)."""
    osla_variance: str = "worst"
    """OSLA's sampling-variance model: 'worst' (paper) or 'bernoulli'."""
    osla_rule: str = "paper"
    """OSLA's rule: 'paper' (the deviation test's plug-in MSE) or 'eb' (Beta posterior under the batch's
    fitted prior strength; see v05.budget)."""
    osla_per_round: int = 1
    """Extra rollouts a prompt that wants more gets per OSLA round (1: the paper; more: fewer generation
    rounds, at the price of overshooting OSLA's stopping point by up to this minus 1)."""
    osla_prior_var: bool = False
    """Pass the value model's variance to OSLA as a floor on the prior's squared error (False: the paper's
    plug-in estimate only; True draws more rollouts wherever the value model is unsure)."""
    dynamic_sampling: bool = False
    """DAPO: drop groups the estimator marks keep=False and draw more prompts until the batch is full."""
    max_resample_rounds: int = 8
    """Dynamic sampling: at most this many extra draws of prompts_per_step prompts per step."""
    value_model: str = "default"
    """Name or path for ``v05.value.ValueModel.load`` (the prior), used when the method needs a prior."""
    context_size: int = 128
    """Value-model context: this many most recent (prompt, observed pass rate) pairs of the policy."""
    history_steps: int = 64
    """Older rows of the last this many steps are passed as the value model's history (earlier checkpoints)."""
    history_block: int = 8
    """Steps grouped into one 'checkpoint' label in that history."""
    # --- optimisation
    prompts_per_step: int = 32
    """Prompts per training step (kept groups, for dynamic sampling)."""
    total_rollouts: int = 20000
    """Stop once this many rollouts (every rollout drawn, dropped ones included) have been spent."""
    lr: float = 3e-4
    """Adam learning rate of the RL phase."""
    n_minibatches: int = 2
    """Optimizer steps per training step (the batch split into this many minibatches)."""
    ppo_epochs: int = 1
    """Passes over the batch per training step."""
    clip_low: float = 0.2
    """Ratio clipping below: 1 - clip_low."""
    clip_high: float = 0.2
    """Ratio clipping above: 1 + clip_high (DAPO's clip-higher uses 0.28)."""
    loss_agg: str = "token-mean"
    """Loss aggregation: 'token-mean' (DAPO), 'seq-mean-token-mean' (GRPO), 'seq-mean-token-sum-norm' (Dr. GRPO)."""
    kl_coef: float = 0.0
    """Weight of the k3 KL estimate to the warm-up (reference) policy; 0 disables it."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping threshold (the logged norm is the one before clipping)."""
    temperature: float = 1.0
    """Sampling temperature of rollouts and evaluation."""
    # --- task, policy, warm-up
    seed: int = 0
    """Seed of the RL phase (prompt order and sampling)."""
    task_seed: int = 0
    """Seed of the task (training pool, held-out set) and of the warm-up; equal across compared runs."""
    n_train_prompts: int = 1024
    """Size of the training pool (iterated over in epochs, so prompts recur)."""
    n_eval_prompts: int = 256
    """Size of the held-out evaluation set."""
    eval_samples: int = 4
    """Samples per held-out prompt at each evaluation (accuracy = mean reward)."""
    eval_every_rollouts: int = 1000
    """Evaluate each time the rollouts spent cross another multiple of this."""
    d_embed: int = 32
    """Policy character-embedding width."""
    d_hidden: int = 128
    """Policy GRU width."""
    n_layers: int = 1
    """Policy GRU layers."""
    warmup_steps: int = 300
    """Supervised warm-up steps (few, so pass rates start between 0 and 1)."""
    warmup_batch: int = 128
    """Warm-up minibatch size."""
    warmup_lr: float = 3e-3
    """Warm-up Adam learning rate."""
    # --- diagnostics and checkpoints
    probe_every: int = 0
    """Every this many steps, re-sample probe_samples rollouts per batch prompt to measure the true pass
    rate and the baseline's error against it (not counted in the budget); 0 disables."""
    probe_samples: int = 64
    """Rollouts per prompt of that measurement."""
    checkpoint_every: int = 50
    """Write a checkpoint every this many steps (and at the end); 0 writes only the final one."""
    threads: int = 1
    """torch intra-op threads."""

    def __post_init__(self):
        known = list_estimators(aliases=True)
        if self.estimator not in known:
            raise ValueError(f"estimator = {self.estimator!r} is unknown; known: {', '.join(known)}")
        if not isinstance(self.estimator_options, dict):
            raise TypeError(f"estimator_options must be a dict, got {type(self.estimator_options).__name__}")
        allowed = get_estimator(self.estimator).options
        bad = sorted(set(self.estimator_options) - set(allowed))
        if bad:
            raise ValueError(f"estimator_options {bad} are not options of {self.estimator!r}; its options: {list(allowed)}")
        _choice(self, "allocation", ALLOCATIONS)
        _choice(self, "loss_agg", LOSS_AGGS)
        _choice(self, "osla_variance", OSLA_VARIANCES)
        _choice(self, "osla_rule", OSLA_RULES)
        for name in ("group_size", "k_max", "prompts_per_step", "total_rollouts", "n_minibatches", "ppo_epochs",
                     "n_train_prompts", "n_eval_prompts", "eval_samples", "eval_every_rollouts", "d_embed",
                     "d_hidden", "n_layers", "warmup_batch", "probe_samples", "threads", "context_size",
                     "history_steps", "history_block", "osla_per_round"):
            _int_at_least(self, name, 1)
        for name in ("seed", "task_seed", "warmup_steps", "max_resample_rounds", "probe_every", "checkpoint_every"):
            _int_at_least(self, name, 0)
        for name in ("lr", "warmup_lr", "max_grad_norm", "temperature"):
            _positive(self, name)
        for name in ("clip_low", "clip_high", "kl_coef", "osla_cost"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
                raise ValueError(f"{name} = {value!r}: must be a finite number >= 0")
        if self.clip_low >= 1:
            raise ValueError(f"clip_low = {self.clip_low}: must be < 1 (the ratio is clipped below at 1 - clip_low)")
        if self.allocation == "osla" and self.k_max < self.group_size:
            raise ValueError(f"k_max ({self.k_max}) must be >= group_size ({self.group_size}), OSLA's k_init")
        if self.allocation == "osla" and self.dynamic_sampling:
            raise ValueError("allocation = 'osla' and dynamic_sampling = True cannot be combined")
        if self.prompts_per_step > self.n_train_prompts:
            raise ValueError(f"prompts_per_step ({self.prompts_per_step}) must be <= n_train_prompts ({self.n_train_prompts})")
        if self.dynamic_sampling and get_estimator(self.estimator).uses_prior:
            raise ValueError(f"dynamic_sampling = True with estimator {self.estimator!r}: dynamic sampling draws prompts "
                             "inside the step, so it supports only estimators without a prior (e.g. 'dapo')")
        self._check_estimator_runs()
        if self.allocation == "osla":
            self.osla  # OSLA's own checks (e.g. rule 'eb' needs k_init >= 2), now rather than at the first step
        if self.total_rollouts < self.rollouts_per_step_min:
            raise ValueError(f"total_rollouts ({self.total_rollouts}) is below one step's rollouts "
                             f"(prompts_per_step x group_size = {self.rollouts_per_step_min})")

    def _check_estimator_runs(self) -> None:
        """Run the estimator once on a step-shaped batch (group_size rollouts for each prompt), so that a group
        size or option it is not defined for fails now, not at the first training step."""
        group = np.repeat(np.arange(self.prompts_per_step), self.group_size)
        rewards = (np.arange(len(group)) % 2).astype(float)
        try:
            compute(self.estimator, rewards, group, prior=np.full(len(group), 0.5),
                    prior_var=np.full(len(group), 0.01), **self.estimator_options)
        except UndefinedError as e:
            raise ValueError(f"group_size = {self.group_size}: estimator {self.estimator!r} is not defined "
                             f"on groups of this size ({e})") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"estimator_options = {self.estimator_options!r}: {e}") from None

    @property
    def rollouts_per_step_min(self) -> int:
        """Rollouts of one step before any top-up or resampling."""
        return self.prompts_per_step * self.group_size

    @property
    def osla(self) -> OslaConfig:
        """The sequential-budget settings these fields describe."""
        return OslaConfig(k_init=self.group_size, k_max=self.k_max, cost=self.osla_cost, variance=self.osla_variance,
                          per_round=self.osla_per_round, rule=self.osla_rule)

    @property
    def needs_prior(self) -> bool:
        """Whether the run queries the value model (the estimator fuses a prior, or OSLA allocates)."""
        return get_estimator(self.estimator).uses_prior or self.allocation == "osla"

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> "TrainConfig":
        """Build from a dict; unknown keys raise ``ValueError`` naming them and ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {unknown}; known: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        """Read a ``.json`` or ``.toml`` file of field values."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        elif path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
        else:
            raise ValueError(f"config file {path}: expected a .json or .toml file")
        return cls.from_dict(data, source=str(path))


def _choice(cfg, name, allowed):
    value = getattr(cfg, name)
    if value not in allowed:
        raise ValueError(f"{name} = {value!r}: expected one of {list(allowed)}")


def _int_at_least(cfg, name, minimum):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} = {value!r}: must be an int")
    if value < minimum:
        raise ValueError(f"{name} = {value}: must be >= {minimum}")


def _positive(cfg, name):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
