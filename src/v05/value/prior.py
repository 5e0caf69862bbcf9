"""Priors during training: the policy's outcome history, and the value model that reads it (any trainer:
the CPU engine, TRL, verl).

:class:`OutcomeHistory` records every observed (prompt, pass rate, rollouts) row with the step it came
from. :class:`ValueModelPrior` turns it into the generalist value model's inputs each step: the most
recent rows are the *context* (the current policy's ability), older rows are *history* labelled by blocks
of steps (earlier checkpoints; they give recurring prompts their difficulty). The value model itself is
frozen: nothing here trains it.
"""

from __future__ import annotations

import bisect
from typing import Protocol

import numpy as np

from v05.baselines import Prior
from v05.data import PassRateTable


class OutcomeHistory:
    """Append-only table of observed pass rates: one row per (step, prompt) with its rollout count."""

    def __init__(self):
        self.step: list[int] = []
        self.prompt: list[str] = []
        self.pass_rate: list[float] = []
        self.n_samples: list[int] = []

    def __len__(self) -> int:
        return len(self.step)

    def add(self, step: int, prompts: list[str], pass_rates, n_samples) -> None:
        """Record the pass rates (in [0, 1]) observed at ``step`` from ``n_samples`` (>= 1) rollouts each.

        Steps must not decrease (the rows stay in step order).
        """
        pass_rates, n_samples = np.asarray(pass_rates, float), np.asarray(n_samples, int)
        if not (len(prompts) == len(pass_rates) == len(n_samples)):
            raise ValueError(f"{len(prompts)} prompts, {len(pass_rates)} pass rates, {len(n_samples)} counts")
        if self.step and step < self.step[-1]:
            raise ValueError(f"step {step} is before the last recorded step {self.step[-1]}")
        if not (np.all((pass_rates >= 0) & (pass_rates <= 1)) and np.all(n_samples >= 1)):
            raise ValueError("pass rates must lie in [0, 1] and rollout counts be >= 1")
        self.step += [int(step)] * len(prompts)
        self.prompt += list(prompts)
        self.pass_rate += pass_rates.tolist()
        self.n_samples += n_samples.tolist()

    def state_dict(self) -> dict:
        """JSON-able contents (floats round-trip exactly through JSON)."""
        return {"step": self.step, "prompt": self.prompt, "pass_rate": self.pass_rate, "n_samples": self.n_samples}

    @classmethod
    def from_state_dict(cls, state: dict) -> "OutcomeHistory":
        """Inverse of :meth:`state_dict`."""
        out = cls()
        out.step, out.prompt = list(state["step"]), list(state["prompt"])
        out.pass_rate, out.n_samples = list(state["pass_rate"]), list(state["n_samples"])
        return out


class PriorSource(Protocol):
    """Anything that predicts the current policy's pass rate on target prompts: a :class:`~v05.baselines.Prior`
    (mean and variance, row j for ``targets[j]``) from the outcomes before ``step``. The CPU engine also takes
    a source that returns a ``(mean, var)`` pair (:meth:`v05.baselines.Prior.coerce`)."""

    def predict(self, history: OutcomeHistory, step: int, targets: list[str]) -> Prior:
        """The prior of ``targets``, one row each, from the outcomes before ``step``."""
        ...


class ValueModelPrior:
    """The generalist value model (:class:`v05.value.ValueModel`) fed from an :class:`OutcomeHistory`.

    Parameters
    ----------
    model : v05.value.ValueModel
        A fitted, frozen value model.
    context_size : int
        The most recent rows used as the policy's context.
    history_steps : int
        Older rows from at most this many steps back are passed as history.
    history_block : int
        Consecutive steps sharing one checkpoint label in that history (the policy drifts slowly, and
        fewer labels make the value model's fit cheaper).
    """

    def __init__(self, model, *, context_size: int, history_steps: int, history_block: int):
        self.model = model
        self.context_size = context_size
        self.history_steps = history_steps
        self.history_block = history_block

    def predict(self, history: OutcomeHistory, step: int, targets: list[str]) -> Prior:
        """Predicted pass rate and its variance for each target prompt (see the class docstring)."""
        n = len(history)
        if n == 0:
            raise ValueError("the outcome history is empty; seed it (e.g. with an evaluation) before predicting")
        start = max(0, n - self.context_size)
        lo = bisect.bisect_left(history.step, step - self.history_steps, 0, start)  # rows are in step order
        table = None
        if lo < start:
            # Built directly (not through from_columns): the rows were validated when they were observed,
            # and re-validating the whole window every step costs more than the prediction itself.
            texts = np.array(history.prompt[lo:start], dtype=object)
            table = PassRateTable(
                prompt_id=texts,
                policy=np.array([f"block{s // self.history_block}" for s in history.step[lo:start]], dtype=object),
                pass_rate=np.array(history.pass_rate[lo:start]),
                n_samples=np.array(history.n_samples[lo:start]),
                prompt=texts,
            )
        mean, var = self.model.predict(
            history.prompt[start:], np.asarray(history.pass_rate[start:]), targets,
            history=table, context_n_samples=np.asarray(history.n_samples[start:]),
        )
        return Prior(np.clip(mean, 0.0, 1.0), var)
