"""The RL training loop: prior -> rollouts (with the budget rule) -> baseline via the registry -> update -> log.

``train(cfg, out_dir)`` reads top to bottom like CleanRL's ``ppo.py``; the math lives in the helpers it
calls (``v05.baselines``, ``v05.budget``, :mod:`v05.rl.loss`). One step:

1. take ``prompts_per_step`` prompts from the pool (epochs, so prompts recur);
2. if the method needs a prior, the frozen value model predicts each prompt's pass rate from the policy's
   recent (prompt, pass rate) context and the prompts' own earlier outcomes;
3. draw rollouts: fixed groups, OSLA top-ups in rounds, or DAPO's dynamic sampling;
4. the chosen estimator gives baselines and advantages;
5. a clipped policy-gradient update;
6. the observed pass rates go back into the history; log, evaluate, checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from v05.baselines import compute
from v05.rl.checkpoint import (
    load_checkpoint,
    numpy_rng_from_state,
    numpy_rng_state,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from v05.rl.config import TrainConfig
from v05.rl.metrics import MetricsLog
from v05.rl.policy import Policy, PolicyConfig, supervised_warmup
from v05.value.prior import OutcomeHistory, PriorSource, ValueModelPrior
from v05.rl.rollout import PromptStream, Sampler, collect_dynamic, collect_fixed, collect_osla, pass_rates
from v05.rl.update import policy_update
from v05.rl.task import ArithmeticTask, encode_answers, encode_prompts, make_problems

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation draws from ``task_seed + offset`` afresh each time (the same noise for every run and step)."""


@dataclass(frozen=True)
class RunResult:
    """What a finished run returns: its records, the accuracy curve and the rollouts spent."""

    records: list[dict]
    curve: list[tuple[int, float]]
    final_accuracy: float
    rollouts: int


def build_policy(cfg: TrainConfig) -> Policy:
    """An untrained policy of the configured size."""
    return Policy(PolicyConfig(d_embed=cfg.d_embed, d_hidden=cfg.d_hidden, n_layers=cfg.n_layers))


def warm_start(cfg: TrainConfig, task: ArithmeticTask, cache_dir) -> dict[str, torch.Tensor]:
    """The supervised warm-up's weights, computed once per (task, size, warm-up settings) and cached.

    Warm-up problems are fresh draws that exclude both the training pool and the held-out set.
    """
    keys = ("task_seed", "n_train_prompts", "n_eval_prompts", "d_embed", "d_hidden", "n_layers",
            "warmup_steps", "warmup_batch", "warmup_lr")
    spec = json.dumps({k: getattr(cfg, k) for k in keys}, sort_keys=True)
    path = Path(cache_dir) / f"warmup_{hashlib.sha256(spec.encode()).hexdigest()[:12]}.safetensors"
    if path.is_file():
        return load_file(str(path))
    torch.set_num_threads(cfg.threads)  # tiny ops: extra threads only add synchronisation (3x slower on 2 cores)
    torch.manual_seed(cfg.task_seed)
    policy = build_policy(cfg)
    rng = np.random.default_rng([cfg.task_seed, 1])
    seen = {p.prompt for p in task.train} | {p.prompt for p in task.eval}
    data = make_problems(max(1, cfg.warmup_steps) * cfg.warmup_batch, rng, exclude=seen, distinct=False)
    prompts = torch.from_numpy(encode_prompts([p.prompt for p in data]))  # (N, T_prompt)
    answers = torch.from_numpy(encode_answers([p.answer for p in data]))  # (N, T_resp)
    supervised_warmup(policy, prompts, answers, steps=cfg.warmup_steps, batch_size=cfg.warmup_batch,
                      lr=cfg.warmup_lr, generator=torch.Generator().manual_seed(cfg.task_seed))
    weights = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(weights, str(tmp))
    tmp.replace(path)
    return weights


def default_prior(cfg: TrainConfig, texts: list[str]) -> PriorSource:
    """The shipped generalist value model (``cfg.value_model``) reading the run's outcome history.

    ``texts`` are all the prompts of the run (their text difficulties are computed once, up front).
    """
    from v05.value import ValueModel

    model = ValueModel.load(cfg.value_model)
    model.text_difficulty(texts)  # one batch up front: the same values on every step and on resume
    return ValueModelPrior(model, context_size=cfg.context_size, history_steps=cfg.history_steps,
                           history_block=cfg.history_block)


def train(
    cfg: TrainConfig,
    out_dir,
    *,
    warmup_cache=None,
    prior_source: PriorSource | None = None,
    on_record: Callable[[dict], None] | None = None,
    tensorboard: bool = True,
) -> RunResult:
    """Train the policy with ``cfg``'s method until ``cfg.total_rollouts`` are spent; resume if possible.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path
        Run folder: ``config.json``, ``metrics.jsonl``, ``tb/``, ``checkpoints/``. If it holds a checkpoint
        of the same config, training continues from it and reproduces the uninterrupted run.
    warmup_cache : path, optional
        Folder for cached warm-up weights (default: ``out_dir``); share it between compared runs.
    prior_source : PriorSource, optional
        Overrides the value model (e.g. in tests); default :func:`default_prior`. Used only when the
        method needs a prior (``cfg.needs_prior``).
    on_record : callable, optional
        Called with every metrics record (progress bars).
    tensorboard : bool
        Write TensorBoard logs.

    Raises
    ------
    ValueError
        If ``out_dir`` holds a checkpoint of a different config.
    """
    torch.set_num_threads(cfg.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = load_checkpoint(out)
    if checkpoint is not None and checkpoint[1]["config"] != cfg.to_dict():
        old = checkpoint[1]["config"]
        diff = sorted(k for k in cfg.to_dict() if old.get(k) != cfg.to_dict()[k])
        raise ValueError(f"{out} holds a checkpoint of a different config (fields {diff} differ); "
                         f"use another --out or the same config")
    task = ArithmeticTask.build(cfg.n_train_prompts, cfg.n_eval_prompts, cfg.task_seed)
    train_prompts = torch.from_numpy(encode_prompts([p.prompt for p in task.train]))  # (P, T_prompt)
    eval_prompts = torch.from_numpy(encode_prompts([p.prompt for p in task.eval]))  # (E, T_prompt)
    policy = build_policy(cfg)
    policy.load_state_dict(warm_start(cfg, task, warmup_cache or out))
    ref_policy = copy.deepcopy(policy).requires_grad_(False) if cfg.kl_coef > 0 else None
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    stream = PromptStream(len(task.train), np.random.default_rng(cfg.seed))
    sampler = Sampler(policy, train_prompts, [p.answer for p in task.train], gen, cfg.temperature)
    if not cfg.needs_prior:
        prior_source = None
    elif prior_source is None:
        prior_source = default_prior(cfg, [p.prompt for p in task.train + task.eval])

    def evaluate() -> tuple[float, np.ndarray]:
        eval_gen = torch.Generator().manual_seed(cfg.task_seed + EVAL_SEED_OFFSET)
        rates = pass_rates(Sampler(policy, eval_prompts, [p.answer for p in task.eval], eval_gen, cfg.temperature),
                           np.arange(len(task.eval)), cfg.eval_samples)  # (E,)
        return float(rates.mean()), rates

    if checkpoint is None:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        step, spent = 0, 0
        log = MetricsLog(out, keep_through=None, tensorboard=tensorboard)
        accuracy, rates = evaluate()
        history = OutcomeHistory()  # seeded with the warm-up policy's held-out results: the first context
        history.add(-1, [p.prompt for p in task.eval], rates, np.full(len(rates), cfg.eval_samples))
        log.log({"step": 0, "rollouts": 0, "eval/accuracy": accuracy})
        next_eval = cfg.eval_every_rollouts
    else:
        tensors, state = checkpoint
        policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")})
        optimizer_from_tensors(optimizer, tensors, state["optimizer"])
        gen.set_state(tensors["rng.torch"])
        stream.rng = numpy_rng_from_state(state["numpy_rng"])
        stream.load_state_dict(state["stream"])
        history = OutcomeHistory.from_state_dict(state["history"])
        step, spent, next_eval = state["step"], state["rollouts"], state["next_eval"]
        log = MetricsLog(out, keep_through=step, tensorboard=tensorboard)
    start_step = step

    def save() -> None:
        opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
        tensors = {**{f"policy.{k}": v for k, v in policy.state_dict().items()}, **opt_tensors,
                   "rng.torch": gen.get_state()}
        save_checkpoint(out, step, tensors, {
            "config": cfg.to_dict(), "rollouts": spent, "next_eval": next_eval, "optimizer": opt_meta,
            "numpy_rng": numpy_rng_state(stream.rng), "stream": stream.state_dict(), "history": history.state_dict(),
        })

    while spent < cfg.total_rollouts:
        step += 1
        timer = _Timer()
        sampler.new_step()
        # 1-3. prompts, their prior, rollouts
        batch, prior, prior_var = _rollouts(cfg, step, task, stream, sampler, prior_source, history, timer)
        # 4. baselines and advantages
        with timer("estimator"):
            res = compute(cfg.estimator, batch.rewards, batch.group,
                          prior=None if prior is None else prior[batch.group],
                          prior_var=None if prior_var is None else prior_var[batch.group],
                          scale="binary", **cfg.estimator_options)
        probe = _probe(cfg, policy, train_prompts, task, batch, res.baseline, prior, step) if (
            cfg.probe_every and step % cfg.probe_every == 0 and len(batch.rewards)) else {}
        # 5. update on the rollouts the estimator keeps
        with timer("update"):
            stats = _update(cfg, policy, optimizer, ref_policy, gen, train_prompts, batch, res)
        # 6. history, bookkeeping, logging
        history.add(step, [task.train[i].prompt for i in batch.prompt_ids], batch.pass_rates, batch.counts)
        spent += batch.spent
        record = {"step": step, "rollouts": spent, **_step_metrics(batch, res, stats, prior, prior_var, timer),
                  "budget/rollouts_total": spent, **probe}
        if spent >= next_eval or spent >= cfg.total_rollouts:
            record["eval/accuracy"] = evaluate()[0]
            while next_eval <= spent:
                next_eval += cfg.eval_every_rollouts
        log.log(record)
        if on_record is not None:
            on_record(record)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and spent < cfg.total_rollouts:
            save()
    if step > start_step or checkpoint is None:
        save()
    log.close()
    curve = [(r["rollouts"], r["eval/accuracy"]) for r in log.records if "eval/accuracy" in r]
    return RunResult(records=list(log.records), curve=curve, final_accuracy=curve[-1][1], rollouts=spent)


def _rollouts(cfg, step, task, stream, sampler, prior_source, history, timer):
    """The step's prompts, their prior (mean, variance; None when unused) and rollouts."""
    if cfg.dynamic_sampling:
        with timer("sample"):
            batch = collect_dynamic(sampler, stream.next, cfg.prompts_per_step, cfg.group_size, cfg.estimator,
                                    cfg.max_resample_rounds, cfg.estimator_options)
        return batch, None, None
    ids = stream.next(cfg.prompts_per_step)
    prior = prior_var = None
    if prior_source is not None:
        with timer("value"):
            prior, prior_var = prior_source.predict(history, step, [task.train[i].prompt for i in ids])
    with timer("sample"):
        if cfg.allocation == "osla":
            batch = collect_osla(sampler, ids, prior, prior_var if cfg.osla_prior_var else None, cfg.osla)
        else:
            batch = collect_fixed(sampler, ids, cfg.group_size)
    return batch, prior, prior_var


def _update(cfg, policy, optimizer, ref_policy, gen, train_prompts, batch, res) -> dict[str, float]:
    """Clipped policy-gradient update on the kept rollouts (no step, zero statistics, if none is kept)."""
    if not res.keep.any():
        return {"loss": 0.0, "grad_norm": 0.0, "clip_frac": 0.0, "kl": 0.0}
    keep = torch.from_numpy(res.keep)  # (N,)
    rows = batch.prompt_ids[batch.group[res.keep]]  # (N_kept,)
    advantages = torch.as_tensor(res.advantage[res.keep], dtype=torch.float32)  # (N_kept,)
    return policy_update(
        policy, optimizer, train_prompts[rows], batch.responses[keep], batch.mask[keep], advantages, generator=gen,
        n_minibatches=cfg.n_minibatches, epochs=cfg.ppo_epochs, clip_low=cfg.clip_low, clip_high=cfg.clip_high,
        loss_agg=cfg.loss_agg, max_grad_norm=cfg.max_grad_norm, ref_policy=ref_policy, kl_coef=cfg.kl_coef)


def _step_metrics(batch, res, stats, prior, prior_var, timer) -> dict[str, float]:
    """The step's namespaced scalars (documented in docs/rl.md)."""
    counts, kept = batch.counts, res.keep
    out = {
        **{f"train/{k}": v for k, v in stats.items()},
        "train/reward_mean": float(batch.rewards.mean()) if len(batch.rewards) else 0.0,
        "baseline/adv_abs_mean": float(np.abs(res.advantage[kept]).mean()) if kept.any() else 0.0,
        "baseline/zero_adv_frac": float((np.abs(res.advantage) < 1e-12).mean()) if len(res.advantage) else 1.0,
        "budget/rollouts_step": batch.spent, "budget/rounds": batch.rounds, "budget/groups": len(counts),
        "budget/k_mean": float(counts.mean()) if len(counts) else 0.0,
        "budget/k_max": int(counts.max()) if len(counts) else 0,
        **{f"time/{k}_s": v for k, v in timer.seconds.items()},
        "time/rollouts_per_s": batch.spent / max(sum(timer.seconds.values()), 1e-9),
    }
    if res.weight is not None:
        out["baseline/fusion_weight"] = float(res.weight.mean())
    if prior is not None:
        out["value/prior_mean"] = float(prior.mean())
        out["value/prior_sd"] = float(np.sqrt(prior_var).mean())
        out["value/mse_observed"] = float(((prior - batch.pass_rates) ** 2).mean())
    return out


def _probe(cfg, policy, train_prompts, task, batch, baseline, prior, step) -> dict[str, float]:
    """Baseline (and prior) error against the pass rate re-measured with many fresh samples.

    Uses its own generator, so probing never changes the training run.
    """
    probe_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    sampler = Sampler(policy, train_prompts, [p.answer for p in task.train], probe_gen, cfg.temperature)
    truth = pass_rates(sampler, batch.prompt_ids, cfg.probe_samples)  # (M,)
    group_baseline = np.bincount(batch.group, weights=baseline, minlength=len(truth)) / batch.counts  # (M,)
    out = {"baseline/mse_true": float(((group_baseline - truth) ** 2).mean()),
           "baseline/mse_true_group_mean": float(((batch.pass_rates - truth) ** 2).mean())}
    if prior is not None:
        out["value/mse_true"] = float(((prior - truth) ** 2).mean())
    return out


class _Timer:
    """Accumulates wall-clock seconds per phase: ``with timer("sample"): ...``."""

    def __init__(self):
        self.seconds: dict[str, float] = {"value": 0.0, "sample": 0.0, "estimator": 0.0, "update": 0.0}
        self._phase = None

    def __call__(self, phase: str):
        self._phase = phase
        return self

    def __enter__(self):
        self._start = time.perf_counter()

    def __exit__(self, *exc):
        self.seconds[self._phase] += time.perf_counter() - self._start
