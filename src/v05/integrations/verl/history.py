"""``+v05.prior_source=history`` in the ``v05_sync`` trainer: the run's own :class:`~v05.value.prior.OutcomeHistory`
and each submitted prompt's prior from it (:class:`~v05.value.HistoryPrior`, ``docs/method.md`` 6.1). No
TransferQueue, no Ray: the trainer hands it the prompts it submits and the outcomes it trains on.

**Key.** A prompt is recorded under its text (:func:`prompt_text`), not its uid: verl draws a fresh ``uuid4``
uid for every dataloader fetch (``trainer_base._fetch_one_gen_batch``), so a recurring prompt (next epoch,
after a resume) never meets its uid again, while its text (``raw_prompt``, in every batch verl submits) is the
same each time; two dataset rows with the same prompt share one history.

**Timing.** A step's prior is computed when its prompts are submitted, from the rows of the steps before
(:meth:`RunHistory.submit`); the step's outcomes join the history when its advantages are computed
(:meth:`RunHistory.observe`), each prompt's pass rate over all its rollouts, first round and top-ups.

**Cold batch.** A batch submitted while the history is empty (the first step, or a resume without any intact
state file) is planned with Beta(1, 1), the only prior there is before any outcome; its estimator reads
instead the batch-level prior cross-fitted on the batch's own first round (:meth:`v05.value.HistoryPrior.cold_start`),
as TRL's history source does.
"""

from __future__ import annotations

import json

import numpy as np

from v05.baselines import Prior
from v05.value import HistoryPrior, OutcomeHistory


def prompt_text(raw_prompt) -> str:
    """The history's key of a prompt: a one-message chat's content, a plain string as it is, any other chat as
    its messages in JSON."""
    if isinstance(raw_prompt, str):
        return raw_prompt
    messages = [dict(m) for m in raw_prompt]
    if len(messages) == 1 and isinstance(messages[0].get("content"), str):
        return messages[0]["content"]
    return json.dumps(messages, sort_keys=True, default=str)


class RunHistory:
    """The outcome history of a verl run and the prompts of the steps in flight (module docstring)."""

    def __init__(self):
        self.history = OutcomeHistory()
        self._texts: dict[str, str] = {}  # root uid -> prompt text, until its outcomes are observed
        self._cold: dict[str, int] = {}  # root uid -> position in its submitted batch, if submitted cold
        # (a prompt whose every rollout failed is never observed: its entries stay, a few bytes each)

    def submit(self, step: int, uids: list[str], raw_prompts) -> Prior:
        """The prior of a submitted batch's prompts (row j for ``uids[j]``) from the rows before ``step``."""
        texts = [prompt_text(p) for p in raw_prompts]
        if not len(self.history):
            self._cold.update((uid, j) for j, uid in enumerate(uids))
        self._texts.update(zip(uids, texts))
        return HistoryPrior().predict(self.history, step, texts)

    def observe(self, step: int, parents: np.ndarray, requests: np.ndarray, unit_rewards: np.ndarray,
                prior, prior_var) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Record a trained batch's outcomes at ``step`` (one entry per session: its root uid, its request uid,
        its reward mapped to [0, 1]) and return the per-session prior the estimator reads: ``prior``/``prior_var``
        as submitted, or for a cold batch the cross-fitted batch-level prior of its first round."""
        parents, requests = np.asarray(parents, dtype=object), np.asarray(requests, dtype=object)
        roots, index = np.unique(parents, return_inverse=True)
        counts = np.bincount(index, minlength=len(roots))
        rates = np.bincount(index, weights=unit_rewards, minlength=len(roots)) / counts
        unknown = [r for r in roots if r not in self._texts]
        if unknown:
            raise RuntimeError(f"v05 history: outcomes of prompt uid {unknown[0]!r}, which was never submitted or "
                               "was already observed")
        cold = np.array([r in self._cold for r in roots], dtype=bool)
        if cold.any() and prior is not None:
            mean, var = self._cold_prior(roots, cold, index, parents == requests, unit_rewards)
            from_cold = cold[index]
            prior = np.where(from_cold, mean[index], prior)
            prior_var = np.where(from_cold, var[index], prior_var)
        self.history.add(step, [self._texts.pop(r) for r in roots], rates, counts)
        for r in roots:
            self._cold.pop(r, None)
        return prior, prior_var

    def _cold_prior(self, roots, cold, index, first, unit_rewards) -> tuple[np.ndarray, np.ndarray]:
        """Per root: the cold start of the ``cold`` roots, taken in their submission order, from their
        first-round rewards (NaN for the other roots)."""
        at = np.flatnonzero(cold)
        at = at[np.argsort([self._cold[r] for r in roots[at]], kind="stable")]
        n_first = np.bincount(index[first], minlength=len(roots))[at]
        wins = np.bincount(index[first], weights=unit_rewards[first], minlength=len(roots))[at]
        prior = HistoryPrior().cold_start(wins / np.maximum(n_first, 1), n_first)
        mean, var = np.full(len(roots), np.nan), np.full(len(roots), np.nan)
        mean[at], var[at] = prior.mean, prior.var
        return mean, var

    def state_dict(self) -> dict:
        """JSON-able state to checkpoint: the history."""
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.history = OutcomeHistory.from_state_dict(state["history"])
