"""``V05Config``: TRL's ``GRPOConfig`` plus V0.5's settings, every one checked when the config is built.

The settings are flat fields (not a nested dataclass) so that ``TrlParser``/``HfArgumentParser`` can read them
from the command line like any GRPO option (``--estimator v05 --k_max 16``). The V0.5 fields mirror the layers'
own settings (``v05.baselines.EstimatorSettings``, ``v05.value.ValuePriorSettings``, ``v05.budget.OslaConfig``
and ``TopUpSettings``): their defaults and help come from there, and ``__post_init__`` builds those settings,
so they are checked by the same code as in the engine and verl, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field

from trl import GRPOConfig

from v05._fields import hf_field
from v05._validation import check_bool, check_choice, check_number, check_positive_int
from v05.baselines import EstimatorSettings, RewardScale, dry_run
from v05.budget import OslaConfig, TopUpSettings
from v05.budget.settings import check_rule_choice
from v05.value import ValuePriorSettings

PRIOR_SOURCES = ("value_model", "column", "callable", "history", "none")
OSLA_FIELDS = ("osla_cost", "osla_rule", "osla_variance", "osla_var_floor", "max_rounds")
"""The fields read only by the OSLA rule."""


@dataclass
class V05Config(GRPOConfig):
    """Configuration of :class:`~v05.integrations.trl.V05GRPOTrainer`: every ``GRPOConfig`` field, plus the
    V0.5 fields below (see each field's ``help``; ``docs/trl.md`` has the design behind them).

    ``num_generations`` is OSLA's ``k_init`` and the size of every top-up block. ``scale_rewards`` is not used
    (the estimator decides any std scaling) and must stay at its default. A step (for ``history_steps``,
    ``budget_per_prompt``) is one generation batch.

    Examples
    --------
    >>> V05Config(output_dir="out", use_cpu=True, bf16=False, estimator_options={"eps": 1e-4})
    Traceback (most recent call last):
    ...
    TypeError: estimator_options = {'eps': 0.0001}: v05 got unknown option(s) ['eps']; its options: ['tau2']
    """

    estimator: str = hf_field(EstimatorSettings, "estimator")
    estimator_options: dict | str | None = hf_field(EstimatorSettings, "estimator_options", default=None,
                                                    prefix="As a dict or a JSON string ('{\"eps\": 1e-4}' matches "
                                                           "TRL's GRPO exactly). ")
    reward_scale: str = field(
        default="binary",
        metadata={"help": "Range of the summed, weighted reward: 'binary' (0/1), 'pm1' (+-1) or 'lo,hi'. Fixes the "
                          "worst-case reward variance and maps the prior (a pass rate) onto the rewards."},
    )
    prior_source: str = field(
        default="value_model",
        metadata={"help": "Where the prior pass rate of each prompt comes from: 'value_model' (the shipped value "
                          "model reading the policy's own outcomes), 'column' (a dataset column), 'callable' (the "
                          "trainer's prior_fn), 'history' (each prompt's Beta posterior of its own past outcomes in "
                          "this run, no value model) or 'none' (no prior: only for estimators that fuse none, "
                          "without top-ups). Used only when the estimator fuses a prior or top-ups are on."},
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
    value_model: str = hf_field(ValuePriorSettings, "value_model", prefix="prior_source='value_model': ")
    context_size: int = hf_field(ValuePriorSettings, "context_size")
    history_steps: int = hf_field(ValuePriorSettings, "history_steps")
    history_block: int = hf_field(ValuePriorSettings, "history_block")
    k_max: int | None = field(
        default=None,
        metadata={"help": "Top-ups (OSLA): most completions per prompt in one generation batch; None turns top-ups "
                          "off (every prompt gets num_generations). Top-ups come in blocks of num_generations, so "
                          "k_max must be a multiple of num_generations."},
    )
    osla_cost: float = hf_field(OslaConfig, "cost", prefix="OSLA: ")
    osla_rule: str = hf_field(OslaConfig, "rule", prefix="OSLA: ")
    osla_variance: str = hf_field(OslaConfig, "variance", prefix="OSLA: ")
    osla_var_floor: bool = hf_field(ValuePriorSettings, "osla_var_floor")
    max_rounds: int | None = hf_field(OslaConfig, "max_rounds", prefix="OSLA: ")
    budget_per_prompt: float | None = hf_field(TopUpSettings, "budget_per_prompt", prefix="OSLA: ")
    rollout_rule: str = hf_field(TopUpSettings, "rule", prefix="Top-ups (set it, or k_max, to turn them on): ")
    rollout_rule_options: dict | str | None = hf_field(
        TopUpSettings, "rule_options", default=None,
        prefix="As a dict or a JSON string. The rule's first-round option (reinforce_ada's round_size, knapsack's and "
               "cures' k_init, dynamic's k) is num_generations, which TRL generates first; k_max, when set, is the "
               "rule's k_max. ")
    rollout_budget: int | None = field(
        default=None,
        metadata={"help": "Deprecated: the old name of a per-batch cap in completions; use budget_per_prompt = "
                          "rollout_budget / (generation_batch_size / num_generations)."},
    )
    osla_prior_var: bool | None = field(default=None, metadata={"help": "Deprecated: the old name of osla_var_floor."})

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
        self.estimator_options = _options(self.estimator_options, "estimator_options")
        self.rollout_rule_options = _options(self.rollout_rule_options, "rollout_rule_options")
        self._renamed()
        EstimatorSettings(self.estimator, self.estimator_options)  # name and options, as in every trainer
        ValuePriorSettings(self.value_model, self.context_size, self.history_steps, self.history_block,
                           self.osla_var_floor)
        self._check_fields()
        self._check_verifier()
        dry_run(self.estimator, self.estimator_options, group_size=self.num_generations,
                n_prompts=self.prompts_per_generation, scale=self.reward_scale)
        check_rule_choice(self.rollout_rule, self.rollout_rule_options, "rollout_rule", "rollout_rule_options")
        if self.top_ups_on:
            self._check_top_ups()

    def _renamed(self) -> None:
        """Old field names still read, each with a ``FutureWarning`` naming the new one."""
        if self.osla_prior_var is not None:
            warnings.warn("osla_prior_var is now osla_var_floor (same meaning, as in the engine's prior section)",
                          FutureWarning, stacklevel=4)
            self.osla_var_floor, self.osla_prior_var = self.osla_prior_var, None
        if self.rollout_budget is None:
            return
        if self.budget_per_prompt is not None:
            raise ValueError("rollout_budget and budget_per_prompt are both set; rollout_budget is the old form of "
                             "budget_per_prompt (x prompts per generation batch)")
        check_positive_int(self.rollout_budget, "rollout_budget")
        self.budget_per_prompt = self.rollout_budget / self.prompts_per_generation
        warnings.warn(f"rollout_budget is deprecated: use budget_per_prompt = {self.budget_per_prompt:g} (rollouts per "
                      "prompt in a generation batch, first round included)", FutureWarning, stacklevel=4)
        self.rollout_budget = None

    def _check_fields(self) -> None:
        try:
            RewardScale.parse(self.reward_scale)
        except ValueError as e:
            raise ValueError(f"reward_scale = {self.reward_scale!r}: {e}") from None
        check_choice(self.prior_source, "prior_source", PRIOR_SOURCES)
        if self.prior_source == "none" and self.needs_prior:
            why = (f"estimator={self.estimator!r} fuses a prior" if not self.top_ups_on
                   else f"k_max={self.k_max} plans top-ups from a prior" if self.k_max is not None
                   else f"rollout_rule={self.rollout_rule!r} plans top-ups from a prior")
            raise ValueError(f"prior_source='none' gives no prior, but {why}; choose another prior_source (e.g. "
                             "'history') or an estimator without a prior (e.g. 'eb_batch', 'grpo') without k_max")
        if not isinstance(self.prior_column, str) or not self.prior_column:
            raise ValueError(f"prior_column = {self.prior_column!r}, must be a non-empty str")
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(f"multi_objective_aggregation = {self.multi_objective_aggregation!r}: V05GRPOTrainer "
                             "sums the weighted rewards ('sum_then_normalize') and hands them to the estimator")
        if self.scale_rewards != "group":
            raise ValueError(f"scale_rewards = {self.scale_rewards!r}: V05GRPOTrainer does not use GRPO's reward "
                             "scaling; the estimator sets it (e.g. estimator='grpo', estimator_options="
                             "{'std_scale': 'batch'} or 'none', or estimator='dr_grpo')")
        if (EstimatorSettings(self.estimator, self.estimator_options).needs_prior_var and self.prior_source == "column"
                and self.prior_var_column is None):
            raise ValueError(f"estimator {self.estimator!r} weights the prior by its variance: set prior_var_column "
                             "(or use prior_source='value_model' or 'history')")

    def _check_verifier(self) -> None:
        check_bool(self.verifier_class_balance, "verifier_class_balance")
        if self.verifier_coef is not None:
            check_number(self.verifier_coef, "verifier_coef", minimum=0.0, min_open=True)
        elif self.verifier_class_balance:
            raise ValueError("verifier_class_balance = True needs verifier_coef (the verifier is off)")

    def _check_top_ups(self) -> None:
        if self.k_max is not None:
            check_positive_int(self.k_max, "k_max")
        if self.rollout_rule != "osla":
            self._check_rule()
            return
        osla = self.top_ups.osla  # the budget layer's own checks: cost, rule, variance, max_rounds, the step cap
        if (osla.k_max - osla.k_init) % self.num_generations:
            raise ValueError(f"k_max ({self.k_max}) must be a multiple of num_generations ({self.num_generations}): "
                             "top-ups come in blocks of num_generations completions (TRL scores whole groups)")

    def _check_rule(self) -> None:
        """Another rollout rule than OSLA: no OSLA field changed, and the rule built and checked on a generation
        batch (its prompts, the step cap, blocks of num_generations)."""
        defaults = {f.name: f.default for f in dataclasses.fields(V05Config)}
        changed = [name for name in OSLA_FIELDS if getattr(self, name) != defaults[name]]
        if changed:
            raise ValueError(f"{', '.join(changed)} set with rollout_rule = {self.rollout_rule!r}: those are OSLA's "
                             "settings; give the rule's own in rollout_rule_options")
        try:
            self.plan_rule.check_plan(self.prompts_per_generation, self.step_budget, self.num_generations)
        except (TypeError, ValueError) as e:
            cap = "" if self.step_budget is None else (f" (budget = budget_per_prompt x prompts per generation batch = "
                                                       f"{self.step_budget})")
            raise type(e)(f"rollout_rule = {self.rollout_rule!r}, rollout_rule_options = "
                          f"{self.rollout_rule_options!r}: {e}{cap}") from None
        if self.rollout_rule == "reinforce_ada":
            self._check_update_rows(self.plan_rule.n)

    def _check_update_rows(self, n: int) -> None:
        """Reinforce-Ada trains on n completions a prompt: n <= num_generations (so every prompt has n), and the
        n x prompts kept rows split evenly over the processes and their steps_per_generation micro-steps."""
        if n > self.num_generations:
            raise ValueError(f"rollout_rule = 'reinforce_ada': rollout_rule_options n ({n}) must be <= num_generations "
                             f"({self.num_generations}), its first round: the loss takes n completions of every prompt")
        kept, parts = n * self.prompts_per_generation, self.world_size * self.steps_per_generation
        if kept % parts:
            raise ValueError(f"rollout_rule = 'reinforce_ada': the loss takes n ({n}) completions of each of the "
                             f"{self.prompts_per_generation} prompts of a generation batch, {kept} rows, which do not "
                             f"split evenly over processes x steps_per_generation ({parts}): choose n or "
                             "per_device_train_batch_size so that they do")

    @property
    def top_ups_on(self) -> bool:
        """Whether training tops up: ``k_max`` is set, or a rollout rule other than OSLA is chosen."""
        return self.k_max is not None or self.rollout_rule != "osla"

    @property
    def needs_prior(self) -> bool:
        """Whether a prior is computed: the estimator fuses one, or top-ups are on."""
        return EstimatorSettings(self.estimator, self.estimator_options).uses_prior or self.top_ups_on

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
        return self.top_ups.osla

    @property
    def top_ups(self) -> TopUpSettings:
        """The budget layer's top-up settings (the rule, OSLA's settings and ``budget_per_prompt``), checked when
        built; under another rule than OSLA, ``k_max`` (when set) is the rule's."""
        osla = OslaConfig(k_init=self.num_generations, k_max=self.k_max or self.num_generations, cost=self.osla_cost,
                          variance=self.osla_variance, rule=self.osla_rule, max_rounds=self.max_rounds)
        options = self.rollout_rule_options
        if self.rollout_rule != "osla" and self.k_max is not None and isinstance(options, dict):
            if options.get("k_max", self.k_max) != self.k_max:
                raise ValueError(f"k_max ({self.k_max}) and rollout_rule_options k_max ({options['k_max']}) differ: "
                                 "set one")
            options = {**options, "k_max": self.k_max}
        try:
            return TopUpSettings(osla, self.budget_per_prompt, self.rollout_rule, options)
        except (TypeError, ValueError) as e:
            raise type(e)(f"rollout_rule = {self.rollout_rule!r}, rollout_rule_options = {options!r}: {e}") from None

    @property
    def plan_rule(self):
        """What the trainer's :class:`v05.budget.RolloutPlan` runs: OSLA's config, or the chosen rule with its
        first round at num_generations (TRL's own generation)."""
        return self.top_ups.plan_rule(first_round=self.num_generations, first_name="num_generations")

    @property
    def step_budget(self) -> int | None:
        """Most completions of one generation batch, all processes and the first round included (None: no cap)."""
        return self.top_ups.step_budget(self.prompts_per_generation)


def _options(value, name: str):
    """An options field as given on the command line (JSON text) or in Python (a dict); None is no options."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"{name} = {value!r} is not valid JSON ({e})") from None
    return {} if value is None else value
