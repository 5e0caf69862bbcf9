"""The RL training loop: setup, then one named step after another until the rollout budget is spent.

``train(cfg, out_dir)`` reads top to bottom like CleanRL's ``ppo.py``; each numbered line is a function of
:mod:`v05.rl.step` and the math lives in the layers below (``v05.baselines``, ``v05.budget``,
:mod:`v05.rl.loss`). The state a step changes is one :class:`v05.rl.state.TrainState`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from v05.rl.checkpoint import save_checkpoint
from v05.rl.config import TrainConfig
from v05.rl.metrics import PhaseTimer
from v05.rl.setup import setup
from v05.rl.state import TrainState
from v05.rl.step import (
    Run,
    compute_baseline,
    draw_rollouts,
    evaluate,
    next_prompts,
    predict_prior,
    probe_baseline,
    record_history,
    step_metrics,
    update_policy,
)
from v05.value.prior import PriorSource


@dataclass(frozen=True)
class RunResult:
    """What a finished run returns: its records, the accuracy curve and the rollouts spent."""

    records: list[dict]
    curve: list[tuple[int, float]]
    final_accuracy: float
    rollouts: int


def train(cfg: TrainConfig, out_dir, *, warmup_cache=None, prior_source: PriorSource | None = None,
          on_record: Callable[[dict], None] | None = None, tensorboard: bool = True) -> RunResult:
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
        Overrides the value model (e.g. in tests): its ``predict(history, step, targets)`` returns a
        :class:`v05.baselines.Prior` (or a ``(mean, var)`` pair); used only when ``cfg.needs_prior``.
    on_record : callable, optional
        Called with every metrics record (progress bars).
    tensorboard : bool
        Write TensorBoard logs.

    Raises
    ------
    ValueError, FileNotFoundError
        From :func:`v05.rl.setup.setup`, before any training: another config's checkpoint, no intact
        checkpoint, a missing value model.
    """
    run, state = setup(cfg, out_dir, warmup_cache=warmup_cache, prior_source=prior_source, tensorboard=tensorboard)
    return train_loop(run, state, on_record)


def train_loop(run: Run, state: TrainState, on_record: Callable[[dict], None] | None = None) -> RunResult:
    """The steps of a prepared run (:func:`v05.rl.setup.setup`) until its rollout budget is spent."""
    cfg = run.cfg
    while state.rollouts < cfg.total_rollouts:
        state.step += 1
        timer = PhaseTimer()
        prompts = next_prompts(run, state)                                   # 1. prompts
        with timer("value"):
            prior = predict_prior(run, state, prompts)                       # 2. prior
        with timer("sample"):
            rollouts = draw_rollouts(run, state, prompts, prior)             # 3. rollouts
        with timer("estimator"):
            baselines = compute_baseline(cfg.method, rollouts, prior)        # 4. baseline
        probe = probe_baseline(run, state, rollouts, baselines, prior)       #    (diagnostic, own RNG)
        with timer("update"):
            stats = update_policy(run, state, rollouts, baselines)           # 5. update
        record_history(state, rollouts)                                      # 6. history
        state.rollouts += rollouts.spent
        record = {"step": state.step, "rollouts": state.rollouts,            # 7. log
                  **step_metrics(rollouts, baselines, stats, prior, timer), "budget/rollouts_total": state.rollouts,
                  **probe, **evaluate_if_due(run, state)}
        run.log.log(record)
        if on_record is not None:
            on_record(record)
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and state.rollouts < cfg.total_rollouts:
            checkpoint(run, state)
    return finish(run, state)


def evaluate_if_due(run: Run, state: TrainState) -> dict[str, float]:
    """Held-out accuracy when the rollouts spent crossed the next evaluation mark, or the budget is spent."""
    if state.rollouts < state.next_eval and state.rollouts < run.cfg.total_rollouts:
        return {}
    while state.next_eval <= state.rollouts:
        state.next_eval += run.cfg.eval.every_rollouts
    return {"eval/accuracy": float(evaluate(run, state.policy).mean())}


def checkpoint(run: Run, state: TrainState) -> None:
    """Save the state (and the config it belongs to) as ``checkpoints/step_<step>``."""
    tensors, meta = state.state_dict()
    save_checkpoint(run.out, state.step, tensors, {"config": run.cfg.to_dict(), **meta})


def finish(run: Run, state: TrainState) -> RunResult:
    """Final checkpoint (unless a finished run was only reloaded), close the log, summarise."""
    if state.step > run.start_step:
        checkpoint(run, state)
    run.log.close()
    curve = [(r["rollouts"], r["eval/accuracy"]) for r in run.log.records if "eval/accuracy" in r]
    return RunResult(records=list(run.log.records), curve=curve, final_accuracy=curve[-1][1], rollouts=state.rollouts)
