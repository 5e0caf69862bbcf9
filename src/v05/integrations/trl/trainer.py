"""``V05GRPOTrainer``: TRL's ``GRPOTrainer`` with any ``v05.baselines`` estimator, priors, and OSLA top-ups.

One generation batch, all processes in step (every decision is taken from gathered data, so every process
takes the same one):

1. TRL generates and scores ``num_generations`` completions of each prompt (its own
   ``_generate_and_score_completions``, untouched); the gathered rewards are kept.
2. The prior of each prompt (column, callable, value model or own history) is computed once, on the main process, and
   broadcast.
3. Top-ups (``k_max`` or ``rollout_rule`` set, training only): a :class:`~v05.budget.RolloutPlan` asks for more completions of
   the prompts whose prior the rollouts contradict, in blocks; TRL generates and scores them by calling its
   own method again on copies of those rows; the outputs are merged row-wise. At most ``max_rounds`` passes.
4. The estimator runs on all the batch's rewards grouped by prompt; each process keeps its own rows'
   advantages (under Reinforce-Ada only the ``n`` rows a prompt of its update, the others dropped before the
   loss and the kept ones shared evenly over the processes); the V0.5 metrics go to TRL's own logs; the observed
   pass rates feed the value model's history.

``docs/trl.md`` explains the design, the settings and the metrics.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOTrainer

from v05.baselines import Prior, RewardScale
from v05.budget import RolloutPlan
from v05.budget.settings import update_rows
from v05.integrations.trl.config import V05Config
from v05.integrations.trl.internals import check_trl, log_metrics, show_advantages
from v05.integrations.trl.priors import (CallablePrior, ColumnPrior, HistorySource, TrlPriorSource,
                                         ValueModelSource, check_prior_column)
from v05.integrations.trl.rows import (PromptTable, gather_output, kept_share, local_rows, merge_outputs,
                                       portable_row, process_slice, scalar_rewards, take_rows, top_up_rows)
from v05.integrations.trl.scoring import (StepScore, check_rewards_in_scale, observed_pass_rates,
                                          planner_rewards, score_step, step_metrics)
from v05.integrations.trl.state import read_state_or_older, write_state
from v05.integrations.trl.verifier import TrlVerifier

@dataclass(frozen=True)
class StepRecord:
    """The last generation batch as the estimator saw it (all processes; rows in round order).

    ``prompts`` (M,) are the value model's texts; ``group``, ``rewards``, ``advantage`` have one entry per
    completion; ``prior`` has one row per prompt (None when unused); ``rounds`` counts top-up passes.
    """

    prompts: list[str]
    group: np.ndarray
    rewards: np.ndarray
    advantage: np.ndarray
    prior: Prior | None
    rounds: int


class V05GRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages come from a ``v05.baselines`` estimator, with priors and OSLA top-ups.

    Takes every ``GRPOTrainer`` argument; ``args`` must be a :class:`V05Config`. ``prior_fn(prompts) -> mean``
    or ``(mean, var)`` supplies the prior when ``prior_source='callable'``.

    Attributes
    ----------
    v05_prior : TrlPriorSource or None
        Where priors come from (None when neither the estimator nor top-ups need one).
    v05_generation : int
        Training generation batches so far (the value model's step counter).
    v05_last_step : StepRecord or None
        The last generation batch, for inspection.
    """

    def __init__(self, model, reward_funcs=None, args: V05Config | None = None, train_dataset=None,
                 eval_dataset=None, *, prior_fn=None, **kwargs):
        check_trl()  # before the model is loaded
        if not isinstance(args, V05Config):
            raise TypeError(f"V05GRPOTrainer needs args=V05Config(...); got {type(args).__name__}")
        self.v05_prior = build_prior_source(args, prior_fn, train_dataset, eval_dataset)
        self.v05_generation = 0
        self.v05_last_step: StepRecord | None = None
        self._v05_rewards_per_func = None
        super().__init__(model, reward_funcs, args, train_dataset, eval_dataset, **kwargs)
        check_trl(trainer=self)
        self._v05_scale = RewardScale.parse(args.reward_scale)
        self._v05_verifier = (None if args.verifier_coef is None else
                              TrlVerifier.build(self._v05_tokenizer, args.verifier_class_balance))

    # -- TRL hooks ------------------------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._v05_rewards_per_func = rewards_per_func  # (n_global_rows, n_funcs), gathered
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        rows = [portable_row(r) for r in inputs]  # before TRL merges rollout fields into the rows
        out, first_rewards, _ = self._v05_generate(inputs)
        start = time.perf_counter()
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        table, first_group = PromptTable.from_rows(gather_object(rows), group_size)
        prior = self._v05_predict(table, first_group, first_rewards)
        parts, rewards, groups, trl_seconds, keep = self._v05_top_ups(mode, table, out, first_rewards, first_group,
                                                                      prior)  # one entry per round
        score = score_step(np.concatenate(rewards), np.concatenate(groups), len(table), estimator=self.args.estimator,
                           options=self.args.estimator_options, scale=self._v05_scale, prior=prior)
        out, mine = self._v05_output(parts, rewards, score, keep)
        if self._v05_verifier is not None:
            out.update(self._v05_verify_inputs(table, np.concatenate(groups), np.concatenate(rewards), mine, out))
        self._v05_record(mode, table, groups, rewards, score, prior)
        log_metrics(self, mode, {"v05/overhead_s": time.perf_counter() - start - trl_seconds})
        return out

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self._v05_verifier is None:
            return loss
        mode = "train" if self.model.training else "eval"
        verify, stats = self._v05_verifier.loss(model, inputs)
        log_metrics(self, mode, {key: self.accelerator.gather(value.detach()).float().mean().item()
                                 for key, value in stats.items()})
        normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0  # as TRL scales its loss
        return loss + self.args.verifier_coef * verify / normalizer

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            prior_state = self.v05_prior.state_dict() if self.v05_prior is not None else {}
            write_state(folder, {"generation": self.v05_generation, "prior": prior_state})

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        state = read_state_or_older(checkpoint)
        if state is not None:
            self.v05_generation = int(state["generation"])
            if self.v05_prior is not None and state["prior"]:
                self.v05_prior.load_state_dict(state["prior"])

    # -- the steps of a generation batch ---------------------------------------------------------------------

    def _v05_generate(self, inputs):
        """TRL's own generation and scoring of ``inputs`` (this process's rows): its output, the gathered
        rewards (n_global_rows,) and the seconds it took."""
        start = time.perf_counter()
        self._v05_rewards_per_func = None
        out = super()._generate_and_score_completions(inputs)
        if self._v05_rewards_per_func is None:
            raise RuntimeError("GRPOTrainer._generate_and_score_completions did not call _calculate_rewards; "
                               "this TRL version is not supported (trl>=1.16,<1.17)")
        rewards = scalar_rewards(self._v05_rewards_per_func, self.reward_weights)
        check_rewards_in_scale(rewards, self._v05_scale, self.args.reward_scale)
        return out, rewards, time.perf_counter() - start

    def _v05_predict(self, table: PromptTable, group: np.ndarray, rewards: np.ndarray) -> Prior | None:
        """The prior of each prompt (row j for prompt j), computed on the main process and broadcast (None if
        unused)."""
        if self.v05_prior is None:
            return None
        result = [None]
        if self.accelerator.is_main_process:
            pass_rate, counts = observed_pass_rates(rewards, group, len(table), self._v05_scale)
            try:
                result = [("ok", self.v05_prior.predict(table, self.v05_generation, pass_rate, counts))]
            except Exception as e:  # noqa: BLE001  re-raised on every process below, so none waits forever
                result = [("error", e)]
        if self.accelerator.num_processes > 1:
            broadcast_object_list(result, from_process=0)
        status, value = result[0]
        if status == "error":
            raise value
        return value

    def _v05_top_ups(self, mode, table, out, rewards, group, prior: Prior):
        """Run the rollout plan's top-up rounds after the first (``out``, ``rewards``, ``group``); returns the
        outputs, rewards and groups of every round, the first included, the seconds TRL spent on top-ups, and
        which rows (all rounds, global order) enter the loss (``v05.budget.settings.update_rows``; None: all)."""
        parts, all_rewards, all_groups, seconds = [out], [rewards], [group], 0.0
        if mode != "train" or not self.args.top_ups_on:
            return parts, all_rewards, all_groups, seconds, None
        plan = RolloutPlan(prior if self.args.osla_var_floor else prior.without_var(), self.args.plan_rule,
                           self.args.step_budget, scale=self._v05_scale, block=self.num_generations,
                           round_multiple=self.args.top_up_round_multiple)
        plan.request()  # the first round (num_generations of every prompt), generated above
        plan.record(group, planner_rewards(rewards, prior.mean[group], self._v05_scale))
        while round_ := plan.request():
            new_rows, new_group = top_up_rows(table.rows, round_.index, round_.n)
            mine = new_rows[process_slice(len(new_rows), self.accelerator.process_index, self.accelerator.num_processes)]
            part, new_rewards, took = self._v05_generate(mine)
            plan.record(new_group, planner_rewards(new_rewards, prior.mean[new_group], self._v05_scale))
            parts.append(part)
            all_rewards.append(new_rewards)
            all_groups.append(new_group)
            seconds += took
        return parts, all_rewards, all_groups, seconds, update_rows(self.args.plan_rule, plan.result(), self._v05_scale)

    def _v05_output(self, parts: list[dict], rewards: list[np.ndarray], score: StepScore,
                    keep: np.ndarray | None) -> tuple[dict, np.ndarray]:
        """The merged output with this process's advantages and rewards, and the global index of each of its rows;
        TRL's completion log shows our advantages. With ``keep`` (Reinforce-Ada), only the kept rows remain, split
        evenly over the processes (:meth:`_v05_keep`)."""
        out = merge_outputs(parts, self._v05_pad_token_id)
        sizes = [len(r) for r in rewards]
        where = (self.accelerator.process_index, self.accelerator.num_processes)
        if keep is None:
            mine = local_rows(np.arange(sum(sizes)), sizes, *where)  # (n_local,) global row of each local row
        else:
            out, mine = self._v05_keep(out, sizes, keep)
        device = out["completion_ids"].device
        out["advantages"] = torch.as_tensor(score.advantage[mine], dtype=torch.float32, device=device)
        out["v05_rewards"] = torch.as_tensor(np.concatenate(rewards)[mine], dtype=torch.float32, device=device)
        show_advantages(self, score.advantage)  # TRL logged its own GRPO advantages for these rows
        return out, mine

    def _v05_keep(self, out: dict, sizes: list[int], keep: np.ndarray) -> tuple[dict, np.ndarray]:
        """Only the rows that enter the loss (``keep``, global order), this process holding an equal share of them;
        the others are dropped before TRL's loss, so they weigh in no normaliser, and ``num_items_in_batch``
        counts the kept rows' tokens."""
        where = (self.accelerator.process_index, self.accelerator.num_processes)
        positions, mine = kept_share(keep, sizes, *where)
        if self.accelerator.num_processes > 1:
            out = gather_output(self.accelerator, out, self._v05_pad_token_id)
        out = take_rows(out, positions)
        mask = out["completion_mask"] if out.get("tool_mask") is None else out["completion_mask"] * out["tool_mask"]
        out["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
        return out, mine

    def _v05_record(self, mode, table, groups, rewards, score, prior: Prior | None) -> None:
        """Log the V0.5 metrics, keep the step for inspection, and feed the outcome history (training)."""
        rounds = len(rewards) - 1
        group, rewards = np.concatenate(groups), np.concatenate(rewards)
        rollouts = np.bincount(group, minlength=len(table))
        k_init = self.num_generations if mode == "train" else self.num_generations_eval
        log_metrics(self, mode, step_metrics(score, rollouts, k_init, rounds, prior))
        self.v05_last_step = StepRecord(table.texts, group, rewards, score.advantage, prior, rounds)
        if mode == "train":
            if self.v05_prior is not None:
                self.v05_prior.observe(self.v05_generation, table.texts, score.pass_rate, score.counts)
            self.v05_generation += 1

    def _v05_verify_inputs(self, table: PromptTable, group: np.ndarray, rewards: np.ndarray, mine: np.ndarray,
                           out: dict) -> dict:
        """RL^V's verification prompts and labels for this process's rows of ``out`` (global rows ``mine``)."""
        problems = np.asarray(table.texts, dtype=object)[group[mine]]
        correct = rewards[mine] > (self._v05_scale.lo + self._v05_scale.hi) / 2
        return self._v05_verifier.inputs(list(problems), out["completion_ids"], out["completion_mask"], correct)

    @property
    def _v05_tokenizer(self):
        """The processor's tokenizer (or the processor, when it is one)."""
        return getattr(self.processing_class, "tokenizer", self.processing_class)

    @property
    def _v05_pad_token_id(self) -> int:
        """The id TRL pads prompts and completions with (the processor's tokenizer's)."""
        return self._v05_tokenizer.pad_token_id


def build_prior_source(args: V05Config, prior_fn, train_dataset, eval_dataset) -> TrlPriorSource | None:
    """The prior source ``args`` asks for, checked before any model is loaded (None if no prior is needed)."""
    if prior_fn is not None and args.prior_source != "callable":
        raise ValueError(f"prior_fn is given but prior_source = {args.prior_source!r}; set prior_source='callable'")
    if not args.needs_prior:
        return None
    if args.prior_source == "callable":
        if prior_fn is None:
            raise ValueError("prior_source='callable' needs prior_fn=(prompts) -> mean or (mean, var)")
        return CallablePrior(prior_fn)
    if args.prior_source == "column":
        evals = eval_dataset.items() if isinstance(eval_dataset, dict) else [("eval_dataset", eval_dataset)]
        for name, dataset in [("train_dataset", train_dataset), *evals]:
            check_prior_column(dataset, args.prior_column, args.prior_var_column, name)
        return ColumnPrior(args.prior_column, args.prior_var_column)
    if args.prior_source == "history":
        return HistorySource()
    from v05.value import ValueModel

    return ValueModelSource(ValueModel.load(args.value_model), context_size=args.context_size,
                            history_steps=args.history_steps, history_block=args.history_block)
