"""The named steps of one training step, in the order :func:`v05.rl.loop.train_loop` calls them.

1. :func:`next_prompts`: the step's M prompts, a :class:`PromptSet` indexed 0..M-1 (the planner's index,
   the only id space of the step);
2. :func:`predict_prior`: the value model's pass rate and variance for each prompt (a :class:`v05.baselines.Prior`);
3. :func:`draw_rollouts`: rollouts by driving a :class:`v05.budget.RolloutPlan` (fixed, OSLA, dynamic);
4. :func:`compute_baseline`: baselines and advantages from the registry;
5. :func:`update_policy`: the clipped policy-gradient update on the kept rollouts;
6. :func:`record_history`: the observed pass rates join the outcome history;
7. :func:`step_metrics` (+ :func:`evaluate`, :func:`probe_baseline`): what the step logs.

Each reads the run's fixed parts from :class:`Run` and changes only :class:`TrainState`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from v05.baselines import Baselines, Prior, compute
from v05.budget import Allocation, RolloutPlan, make_rule
from v05.budget.settings import update_rows
from v05.rl.config import MethodConfig, TrainConfig
from v05.rl.metrics import MetricsLog, PhaseTimer
from v05.rl.policy import Policy
from v05.rl.prompts import PromptSet
from v05.rl.rollout import Rollouts, collect, collect_dynamic, collect_fixed
from v05.rl.sampler import Sampler, pass_rates
from v05.rl.state import TrainState
from v05.rl.update import policy_update
from v05.rl.verifier import VerifierBatch
from v05.value.prior import PriorSource

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation draws from ``task.seed + offset`` afresh each time (the same noise for every run and step)."""
NO_UPDATE = {"loss": 0.0, "grad_norm": 0.0, "clip_frac": 0.0, "kl": 0.0}


@dataclass(frozen=True)
class Run:
    """What a run reads and never changes: config, folder, prompts, prior source, KL reference, log."""

    cfg: TrainConfig
    out: Path
    pool: PromptSet
    """The training pool (steps take their prompts from it)."""
    held_out: PromptSet
    """The evaluation set."""
    prior_source: PriorSource | None
    """The value model reading the run's history; None when the method needs no prior."""
    ref_policy: Policy | None
    """The frozen warm-up policy, the KL reference (None without KL)."""
    log: MetricsLog
    start_step: int
    """The step the run started or resumed from."""


def next_prompts(run: Run, state: TrainState) -> PromptSet:
    """1. The next ``method.prompts_per_step`` prompts of the pool's epoch order."""
    return run.pool.take(state.stream.next(run.cfg.method.prompts_per_step))


def predict_prior(run: Run, state: TrainState, prompts: PromptSet) -> Prior | None:
    """2. Each prompt's predicted pass rate and variance from the outcomes before this step, row j for prompt j
    (None: the method needs none)."""
    if run.prior_source is None:
        return None
    return Prior.coerce(run.prior_source.predict(state.history, state.step, prompts.texts))


def draw_rollouts(run: Run, state: TrainState, prompts: PromptSet, prior: Prior | None) -> Rollouts:
    """3. The step's rollouts under ``method.allocation``, from a sampler (and prefix cache) made for this step."""
    cfg = run.cfg
    sampler = Sampler(state.policy, prompts, state.generator, cfg.temperature)
    if cfg.method.allocation == "osla":
        return collect(sampler, RolloutPlan(prior if cfg.prior.osla_var_floor else prior.without_var(),
                                               cfg.plan_rule))
    if cfg.method.allocation == "dynamic":
        def fresh() -> Sampler:
            return Sampler(state.policy, next_prompts(run, state), state.generator, cfg.temperature)

        return collect_dynamic(sampler, fresh, cfg.group_size, cfg.method.max_resample_rounds)
    return collect_fixed(sampler, cfg.group_size)


def compute_baseline(method: MethodConfig, rollouts: Rollouts, prior: Prior | None) -> Baselines:
    """4. Baselines and advantages of the configured estimator; the rollouts' group ids are their prompts'
    indices, so the per-prompt prior goes in as it is (row j for prompt j).

    A batch without rollouts (dynamic sampling that kept no group) gets empty results: no update. Under the
    ``reinforce_ada`` rollout rule the estimator runs on each prompt's whole pool and the update keeps the ``n``
    rows Reinforce-Ada down-samples (``ReinforceAda.update_rows``, ``docs/method.md`` 10.1).
    """
    if len(rollouts.rewards) == 0:
        empty = np.zeros(0)
        return Baselines(empty, empty, None, np.zeros(0, dtype=bool))
    out = compute(method.estimator, rollouts.rewards, rollouts.group, prior=prior, scale="binary",
                  **method.estimator_options)
    if method.allocation == "osla":
        pool = Allocation(rollouts.rewards, rollouts.group, np.zeros(len(rollouts.rewards), dtype=np.int64),
                          rollouts.counts, rollouts.rounds)
        keep = update_rows(make_rule(method.rollout_rule, method.rollout_rule_options), pool)
        if keep is not None:
            out = dataclasses.replace(out, keep=out.keep & keep)
    return out


def update_policy(run: Run, state: TrainState, rollouts: Rollouts, baselines: Baselines) -> dict[str, float]:
    """5. Clipped policy-gradient update on the rollouts the estimator keeps (none kept: no update); with
    ``verifier.enabled``, plus RL^V's verification loss on the same rollouts, labelled by their rewards."""
    keep = baselines.keep  # (N,)
    if not keep.any():
        return dict(NO_UPDATE)
    rows = torch.from_numpy(keep)
    prompts = rollouts.prompts.tokens[torch.from_numpy(rollouts.group[keep])]  # (N_kept, T_prompt)
    responses, mask = rollouts.responses[rows], rollouts.mask[rows]  # (N_kept, T)
    advantages = torch.as_tensor(baselines.advantage[keep], dtype=torch.float32)  # (N_kept,)
    verify = None
    if run.cfg.verifier.enabled:
        verify = VerifierBatch.build(state.policy, run.cfg.verifier, prompts, responses, mask, rollouts.rewards[keep])
    return policy_update(state.policy, state.optimizer, prompts, responses, mask, advantages, config=run.cfg.optim,
                         generator=state.generator, ref_policy=run.ref_policy, aux_loss=verify)


def record_history(state: TrainState, rollouts: Rollouts) -> None:
    """6. The step's observed pass rates (and rollout counts) join the history the value model reads."""
    state.history.add(state.step, rollouts.prompts.texts, rollouts.pass_rates, rollouts.counts)


def step_metrics(rollouts: Rollouts, baselines: Baselines, stats: dict, prior: Prior | None,
                 timer: PhaseTimer) -> dict[str, float]:
    """7. The step's namespaced scalars (each documented in docs/rl.md)."""
    counts, kept, n = rollouts.counts, baselines.keep, len(rollouts.rewards)
    out = {
        **{k if "/" in k else f"train/{k}": v for k, v in stats.items()},  # the update's own keys go under train/
        "train/reward_mean": float(rollouts.rewards.mean()) if n else 0.0,
        "baseline/adv_abs_mean": float(np.abs(baselines.advantage[kept]).mean()) if kept.any() else 0.0,
        "baseline/zero_adv_frac": float((np.abs(baselines.advantage) < 1e-12).mean()) if n else 1.0,
        "budget/rollouts_step": rollouts.spent, "budget/rounds": rollouts.rounds, "budget/groups": len(counts),
        "budget/k_mean": float(counts.mean()) if len(counts) else 0.0,
        "budget/k_max": int(counts.max()) if len(counts) else 0,
        **{f"time/{k}_s": v for k, v in timer.seconds.items()},
        **{f"time/{k}_cpu_s": v for k, v in timer.cpu_seconds.items()},
        "time/rollouts_per_s": rollouts.spent / max(sum(timer.seconds.values()), 1e-9),
    }
    if baselines.weight is not None:
        out["baseline/fusion_weight"] = float(baselines.weight.mean())
    if prior is not None:
        out["value/prior_mean"] = float(prior.mean.mean())
        out["value/prior_sd"] = float(np.sqrt(prior.var).mean())
        out["value/mse_observed"] = float(((prior.mean - rollouts.pass_rates) ** 2).mean())
    return out


def evaluate(run: Run, policy: Policy) -> np.ndarray:
    """Held-out pass rate of every evaluation prompt, shape ``(E,)`` (``eval.samples`` samples each), with the
    same sampling noise at every evaluation of every run."""
    cfg = run.cfg
    generator = torch.Generator().manual_seed(cfg.task.seed + EVAL_SEED_OFFSET)
    return pass_rates(Sampler(policy, run.held_out, generator, cfg.temperature), cfg.eval.samples)


def probe_baseline(run: Run, state: TrainState, rollouts: Rollouts, baselines: Baselines,
                   prior: Prior | None) -> dict[str, float]:
    """On probe steps, the baseline's (and prior's) error against each prompt's pass rate re-measured with
    ``eval.probe_samples`` fresh samples; its own generator, so probing never changes the run."""
    cfg = run.cfg
    if not (cfg.eval.probe_every and state.step % cfg.eval.probe_every == 0 and len(rollouts.rewards)):
        return {}
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state.step)
    truth = pass_rates(Sampler(state.policy, rollouts.prompts, generator, cfg.temperature), cfg.eval.probe_samples)  # (M,)
    per_prompt = np.bincount(rollouts.group, weights=baselines.baseline, minlength=len(truth)) / rollouts.counts  # (M,)
    out = {"baseline/mse_true": float(((per_prompt - truth) ** 2).mean()),
           "baseline/mse_true_group_mean": float(((rollouts.pass_rates - truth) ** 2).mean())}
    if prior is not None:
        out["value/mse_true"] = float(((prior.mean - truth) ** 2).mean())
    return out
