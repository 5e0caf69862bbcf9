"""Everything before a run's first step: the run folder and its checkpoint, the task, the prior, the
warm-started policy, and a fresh or restored :class:`TrainState`.

What a user can get wrong is checked first, before any long work: a run folder that is a file, a checkpoint
of another config or with no intact checkpoint left, a value model that does not exist. A corrupt newest
checkpoint is reported and the newest intact older one is used.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from threadpoolctl import threadpool_limits

from v05.rl.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from v05.rl.config import TrainConfig
from v05.rl.exact import ExactPassRatePrior
from v05.rl.metrics import MetricsLog
from v05.rl.policy import Policy, supervised_warmup
from v05.rl.prompts import PromptSet
from v05.rl.state import TrainState
from v05.rl.step import Run, evaluate
from v05.rl.task import MAX_TERMS, ArithmeticTask, encode_answers, encode_prompts, make_problems
from v05.rl.verifier import make_policy
from v05.value import HistoryPrior
from v05.value.prior import PriorSource, ValueModelPrior

logger = logging.getLogger("v05.rl")


def setup(cfg: TrainConfig, out_dir, *, warmup_cache=None, prior_source: PriorSource | None = None,
          tensorboard: bool = True) -> tuple[Run, TrainState]:
    """Prepare a run in ``out_dir``: resume its newest intact checkpoint, or start from the warm-up.

    Raises
    ------
    ValueError
        ``out_dir`` holds a checkpoint of a different config (``CheckpointError``: none intact).
    FileNotFoundError
        The value model does not exist (raised before the warm-up).
    """
    torch.set_num_threads(cfg.threads)
    threadpool_limits(cfg.threads, user_api="blas")  # the value model's numpy: an idle OpenBLAS thread spins
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"run folder {out} is a file; pass a folder (new or of this run)")
    checkpoint = load_checkpoint(out)
    if checkpoint is not None:
        _check_same_config(checkpoint, cfg)
    out.mkdir(parents=True, exist_ok=True)
    task = ArithmeticTask.build(cfg.task.n_train, cfg.task.n_eval, cfg.task.seed)
    pool, held_out = PromptSet.from_problems(task.train), PromptSet.from_problems(task.eval)
    if not cfg.needs_prior:
        prior_source = None
    elif prior_source is None and cfg.prior.source == "value_model":
        prior_source = value_model_prior(cfg, pool.texts + held_out.texts)
    elif prior_source is None and cfg.prior.source == "history":
        prior_source = HistoryPrior()
    policy = make_policy(cfg.policy, cfg.verifier, warm_start(cfg, task, warmup_cache or out), seed=cfg.task.seed)
    if cfg.needs_prior and prior_source is None:  # prior.source = "exact": the oracle reads the policy itself
        prior_source = ExactPassRatePrior(policy, dict(zip(pool.texts + held_out.texts, pool.answers + held_out.answers)),
                                          cfg.temperature)
    state = TrainState.start(cfg, policy)
    ref_policy = copy.deepcopy(policy).requires_grad_(False) if cfg.optim.kl_coef > 0 else None
    if checkpoint is not None:
        _restore(state, checkpoint)
    log = MetricsLog(out, keep_through=None if checkpoint is None else state.step, tensorboard=tensorboard)
    run = Run(cfg, out, pool, held_out, prior_source, ref_policy, log, state.step)
    if checkpoint is None:
        _start(run, state)
    return run, state


def value_model_prior(cfg: TrainConfig, texts: list[str]) -> PriorSource:
    """The value model ``prior.value_model`` reading the run's outcome history.

    Loading it fails at once for a model that does not exist; then every prompt's text difficulty is
    computed once (the same values on every step and on resume).
    """
    from v05.value import ValueModel

    model = ValueModel.load(cfg.prior.value_model)
    model.text_difficulty(texts)
    return ValueModelPrior(model, context_size=cfg.prior.context_size, history_steps=cfg.prior.history_steps,
                           history_block=cfg.prior.history_block)


def warm_start(cfg: TrainConfig, task: ArithmeticTask, cache_dir) -> dict[str, torch.Tensor]:
    """The supervised warm-up's weights, computed once per (task, policy, warm-up settings) and cached.

    Warm-up problems are fresh draws (of at most ``warmup.max_terms`` terms) that exclude both the training pool
    and the held-out set.
    """
    spec = json.dumps(warmup_key(cfg), sort_keys=True)
    path = Path(cache_dir) / f"warmup_{hashlib.sha256(spec.encode()).hexdigest()[:12]}.safetensors"
    if path.is_file():
        return load_file(str(path))
    torch.set_num_threads(cfg.threads)  # tiny ops: extra threads only add synchronisation (3x slower on 2 cores)
    torch.manual_seed(cfg.task.seed)
    policy = Policy(cfg.policy)
    rng = np.random.default_rng([cfg.task.seed, 1])
    seen = {p.prompt for p in task.train} | {p.prompt for p in task.eval}
    data = make_problems(max(1, cfg.warmup.steps) * cfg.warmup.batch, rng, exclude=seen, distinct=False,
                         max_terms=cfg.warmup.max_terms)
    prompts = torch.from_numpy(encode_prompts([p.prompt for p in data]))  # (N, T_prompt)
    answers = torch.from_numpy(encode_answers([p.answer for p in data]))  # (N, T_resp)
    supervised_warmup(policy, prompts, answers, steps=cfg.warmup.steps, batch_size=cfg.warmup.batch,
                      lr=cfg.warmup.lr, generator=torch.Generator().manual_seed(cfg.task.seed))
    weights = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(weights, str(tmp))
    tmp.replace(path)
    return weights


def warmup_key(cfg: TrainConfig) -> dict:
    """The settings the warm-up depends on (the cache key). ``task.stream`` is left out (the warm-up does not
    depend on how the pool is read), and ``warmup.max_terms`` enters only when set below the task's longest
    chain, so caches written before it existed stay valid."""
    task = {k: v for k, v in cfg.task.__dict__.items() if k != "stream"}
    warmup = {k: v for k, v in cfg.warmup.__dict__.items() if k != "max_terms" or v != MAX_TERMS}
    return {"task": task, "policy": cfg.policy.__dict__, "warmup": warmup}


def _check_same_config(checkpoint: Checkpoint, cfg: TrainConfig) -> None:
    old = saved_config(checkpoint.state)
    if old != cfg.to_dict():
        old, new = _flat(old) if isinstance(old, dict) else {}, _flat(cfg.to_dict())
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise ValueError(f"{checkpoint.path.parent.parent} holds a checkpoint of a different config (settings "
                         f"{diff} differ); use another --out or the same config")


def saved_config(state: dict):
    """A checkpoint's config with the settings added since it was written at their defaults (a run from before
    the ``verifier`` section resumes as a run without the verifier); as stored if it no longer parses.

    Outside ``method.allocation='osla'`` the ``osla`` section is not read, so it takes today's defaults (a
    fixed-k run written before ``osla.max_rounds`` defaulted to 2 resumes as the same run)."""
    old = state.get("config")
    if isinstance(old, dict) and isinstance(old.get("method"), dict) and old["method"].get("allocation") != "osla":
        old = {k: v for k, v in old.items() if k != "osla"}
    try:
        return TrainConfig.from_dict(old).to_dict()
    except (TypeError, ValueError):
        return old


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys (with values, so two configs can be compared key by key)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True)
    return out


def _restore(state: TrainState, checkpoint: Checkpoint) -> None:
    for problem in checkpoint.skipped:
        logger.warning("%s; using the older checkpoint %d", problem, checkpoint.step)
    try:
        state.load_state_dict(checkpoint.tensors, checkpoint.state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {checkpoint.step} is corrupt: {checkpoint.path / 'state.json'} or its "
                              f"weights do not fit this run ({type(e).__name__}: {e})") from None
    logger.info("resuming from step %d", checkpoint.step)


def _start(run: Run, state: TrainState) -> None:
    """A fresh run: write its config, seed the history with the warm-up policy's held-out results (the first
    context of the value model) and log step 0."""
    (run.out / "config.json").write_text(json.dumps(run.cfg.to_dict(), indent=2))
    rates = evaluate(run, state.policy)  # (E,)
    state.history.add(-1, run.held_out.texts, rates, np.full(len(rates), run.cfg.eval.samples))
    run.log.log({"step": 0, "rollouts": 0, "eval/accuracy": float(rates.mean())})
