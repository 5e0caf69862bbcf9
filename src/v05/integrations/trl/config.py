"""``V05Config``: TRL's ``GRPOConfig`` plus V0.5's settings, every one checked when the config is built.

The settings are flat fields (not a nested dataclass) so that ``TrlParser``/``HfArgumentParser`` can read them
from the command line like any GRPO option (``--estimator v05 --k_max 16``); each is documented once, in its
``help``. Everything that can be checked without the model or the data is checked in ``__post_init__``, so a
bad value fails before any model is loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
from trl import GRPOConfig

from v05._validation import check_bool, check_choice, check_number, check_positive_int
from v05.baselines import RewardScale, UndefinedError, compute, get_estimator, list_estimators
from v05.budget import OslaConfig

PRIOR_SOURCES = ("value_model", "column", "callable")


@dataclass
class V05Config(GRPOConfig):
    """Configuration of :class:`~v05.integrations.trl.V05GRPOTrainer`: every ``GRPOConfig`` field, plus the
    V0.5 fields below (see each field's ``help``; ``docs/trl.md`` has the design behind them).

    ``num_generations`` is OSLA's ``k_init`` and the size of every top-up block. ``scale_rewards`` is not used
    (the estimator decides any std scaling) and must stay at its default.

    Examples
    --------
    >>> V05Config(output_dir="out", use_cpu=True, bf16=False, estimator_options={"eps": 1e-4})
    Traceback (most recent call last):
    ...
    ValueError: estimator_options = {'eps': 0.0001}: v05_eb got unknown option(s) ['eps']; its options: ['tau2']
    """

    estimator: str = field(
        default="v05",
        metadata={"help": "Baseline estimator: any name in v05.baselines.list_estimators(aliases=True), e.g. 'v05' "
                          "(the default fusion), 'v05_paper', 'grpo', 'rloo'."},
    )
    estimator_options: dict | str | None = field(
        default=None,
        metadata={"help": "Keyword options of the estimator, as a dict or a JSON string, e.g. "
                          "'{\"std_scale\": \"none\"}' for grpo or '{\"eps\": 1e-4}' to match TRL's GRPO exactly."},
    )
    reward_scale: str = field(
        default="binary",
        metadata={"help": "Range of the summed, weighted reward: 'binary' (0/1), 'pm1' (+-1) or 'lo,hi'. Fixes the "
                          "worst-case reward variance and maps the prior (a pass rate) onto the rewards."},
    )
    prior_source: str = field(
        default="value_model",
        metadata={"help": "Where the prior pass rate of each prompt comes from: 'value_model' (the shipped value "
                          "model reading the policy's own outcomes), 'column' (a dataset column) or 'callable' (the "
                          "trainer's prior_fn). Used only when the estimator fuses a prior or top-ups are on."},
    )
    prior_column: str = field(
        default="prior_value",
        metadata={"help": "Dataset column with the prior pass rate in [0, 1] (prior_source='column')."},
    )
    prior_var_column: str | None = field(
        default=None,
        metadata={"help": "Optional dataset column with the prior's variance (prior_source='column'); needed by "
                          "estimators that weight the prior by its variance (v05_prior_var)."},
    )
    value_model: str = field(
        default="default",
        metadata={"help": "Value model name (shipped weights) or directory (prior_source='value_model')."},
    )
    context_size: int = field(
        default=128,
        metadata={"help": "Value-model context: the most recent (prompt, observed pass rate) rows of the policy."},
    )
    history_steps: int = field(
        default=64,
        metadata={"help": "Older outcome rows from at most this many generation batches back are the value "
                          "model's history (earlier checkpoints of the policy)."},
    )
    history_block: int = field(
        default=8,
        metadata={"help": "Generation batches sharing one checkpoint label in that history."},
    )
    k_max: int | None = field(
        default=None,
        metadata={"help": "Top-ups (OSLA): most completions per prompt in one generation batch; None turns top-ups "
                          "off (every prompt gets num_generations). Top-ups come in blocks of num_generations, so "
                          "k_max must be a multiple of num_generations."},
    )
    osla_cost: float = field(
        default=0.0039,
        metadata={"help": "OSLA's cost of one rollout in squared +-1 reward units (the paper's c ~ 1/256)."},
    )
    osla_rule: str = field(
        default="paper",
        metadata={"help": "OSLA's rule: 'paper' (the deviation test's plug-in MSE) or 'eb' (Beta posterior under "
                          "the batch's fitted prior strength)."},
    )
    osla_variance: str = field(
        default="worst",
        metadata={"help": "OSLA's sampling-variance model: 'worst' (the paper) or 'bernoulli'."},
    )
    osla_prior_var: bool = field(
        default=False,
        metadata={"help": "Pass the prior's variance to OSLA as a floor on the prior's squared error (more "
                          "top-ups where the value model is unsure)."},
    )
    max_rounds: int | None = field(
        default=1,
        metadata={"help": "Most top-up generation passes per generation batch (each prompt gets its projected "
                          "need spread over the passes left); None: no cap but k_max."},
    )
    rollout_budget: int | None = field(
        default=None,
        metadata={"help": "Most completions per generation batch, all processes and the first round included "
                          "(>= generation_batch_size); top-ups go to the largest expected gains first. None: only "
                          "k_max caps."},
    )

    verifier_coef: float | None = field(
        default=None,
        metadata={"help": "RL^V (docs/rlv.md): train the policy to judge its own completions, adding "
                          "verifier_coef * J_verify (the next-token loss of 'Yes'/'No' after problem, completion and "
                          "'Is this solution correct?', labelled by the completion's reward) to the loss. None: off."},
    )
    verifier_class_balance: bool = field(
        default=False,
        metadata={"help": "Weight correct and wrong completions equally in J_verify (within each process's "
                          "generation batch); needs verifier_coef."},
    )

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.estimator_options, str):
            try:
                self.estimator_options = json.loads(self.estimator_options)
            except json.JSONDecodeError as e:
                raise ValueError(f"estimator_options = {self.estimator_options!r} is not valid JSON ({e})") from None
        self.estimator_options = {} if self.estimator_options is None else self.estimator_options
        if not isinstance(self.estimator_options, dict):
            raise TypeError(f"estimator_options must be a dict or a JSON object; got "
                            f"{type(self.estimator_options).__name__} {self.estimator_options!r}")
        self._check_fields()
        self._check_verifier()
        self._check_estimator_runs(self.prompts_per_generation, self.num_generations)
        if self.k_max is not None:
            self._check_top_ups()

    def _check_fields(self) -> None:
        if self.estimator not in list_estimators(aliases=True):
            raise ValueError(f"estimator = {self.estimator!r} is unknown; known: "
                             f"{', '.join(list_estimators(aliases=True))}")
        try:
            RewardScale.parse(self.reward_scale)
        except ValueError as e:
            raise ValueError(f"reward_scale = {self.reward_scale!r}: {e}") from None
        check_choice(self.prior_source, "prior_source", PRIOR_SOURCES)
        for name in ("prior_column", "value_model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} = {getattr(self, name)!r}, must be a non-empty str")
        for name in ("context_size", "history_steps", "history_block"):
            check_positive_int(getattr(self, name), name)
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(f"multi_objective_aggregation = {self.multi_objective_aggregation!r}: V05GRPOTrainer "
                             "sums the weighted rewards ('sum_then_normalize') and hands them to the estimator")
        if self.scale_rewards != "group":
            raise ValueError(f"scale_rewards = {self.scale_rewards!r}: V05GRPOTrainer does not use GRPO's reward "
                             "scaling; the estimator sets it (e.g. estimator='grpo', estimator_options="
                             "{'std_scale': 'batch'} or 'none', or estimator='dr_grpo')")
        entry = get_estimator(self.estimator)
        if (entry.needs_prior_var and self.prior_source == "column" and self.prior_var_column is None):
            raise ValueError(f"estimator {self.estimator!r} weights the prior by its variance: set prior_var_column "
                             "(or use prior_source='value_model')")

    def _check_verifier(self) -> None:
        check_bool(self.verifier_class_balance, "verifier_class_balance")
        if self.verifier_coef is not None:
            check_number(self.verifier_coef, "verifier_coef", minimum=0.0, min_open=True)
        elif self.verifier_class_balance:
            raise ValueError("verifier_class_balance = True needs verifier_coef (the verifier is off)")

    def _check_estimator_runs(self, n_prompts: int, group_size: int) -> None:
        """Run the estimator once on a batch shaped like a generation batch, so that an option or a group size it
        is not defined for fails now, not at the first step."""
        group = np.repeat(np.arange(n_prompts), group_size)
        scale = RewardScale.parse(self.reward_scale)
        rewards = scale.from_unit((np.arange(len(group)) % 2).astype(float))
        try:
            compute(self.estimator, rewards, group, prior=np.full(len(group), 0.5),
                    prior_var=np.full(len(group), 0.01), scale=scale, **self.estimator_options)
        except UndefinedError as e:
            raise ValueError(f"estimator {self.estimator!r} is not defined on a generation batch of {n_prompts} "
                             f"prompt(s) x {group_size} completions: {e}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"estimator_options = {self.estimator_options!r}: {e}") from None

    def _check_top_ups(self) -> None:
        check_positive_int(self.k_max, "k_max")
        osla = self.osla  # OslaConfig's own checks: cost, rule, variance, max_rounds
        if (osla.k_max - osla.k_init) % self.num_generations:
            raise ValueError(f"k_max ({self.k_max}) must be a multiple of num_generations ({self.num_generations}): "
                             "top-ups come in blocks of num_generations completions (TRL scores whole groups)")
        if self.rollout_budget is not None:
            check_positive_int(self.rollout_budget, "rollout_budget")
            if self.rollout_budget < self.generation_batch_size:
                raise ValueError(f"rollout_budget ({self.rollout_budget}) must be >= generation_batch_size "
                                 f"({self.generation_batch_size}), the first round")

    @property
    def needs_prior(self) -> bool:
        """Whether a prior is computed: the estimator fuses one, or top-ups are on."""
        return get_estimator(self.estimator).uses_prior or self.k_max is not None

    @property
    def prompts_per_generation(self) -> int:
        """Distinct prompts in one generation batch (all processes)."""
        return self.generation_batch_size // self.num_generations

    @property
    def top_up_round_multiple(self) -> int:
        """Every top-up round draws a multiple of this many completions in all: whole groups of num_generations
        that split evenly over the processes and, on each, into steps_per_generation equal parts."""
        return math.lcm(self.num_generations, self.world_size * self.steps_per_generation)

    @property
    def osla(self) -> OslaConfig:
        """The planner's settings (``k_init`` = num_generations); only meaningful when ``k_max`` is set."""
        return OslaConfig(k_init=self.num_generations, k_max=self.k_max or self.num_generations, cost=self.osla_cost,
                          variance=self.osla_variance, rule=self.osla_rule, max_rounds=self.max_rounds)
