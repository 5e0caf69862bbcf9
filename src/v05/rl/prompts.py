"""Prompts as the engine uses them: a :class:`PromptSet` (texts, tokens and answers, aligned) and the
:class:`PromptStream` that reads the training pool in epochs.

Within a training step the prompts are one ``PromptSet`` indexed 0..M-1, the rollout planner's prompt
index: rollouts, rewards, the prior and the history all refer to prompts by that position, and ``pool_ids``
says only where each came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from v05.rl.checkpoint import numpy_rng_from_state, numpy_rng_state
from v05.rl.task import Problem, encode_prompts


@dataclass(frozen=True)
class PromptSet:
    """M prompts: their texts, encoded tokens ``(M, T_prompt)``, reference answers and pool positions."""

    texts: list[str]
    tokens: torch.Tensor
    answers: list[str]
    pool_ids: np.ndarray
    """(M,) position of each prompt in the set it was taken from (for logs; never used to index rollouts)."""

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> "PromptSet":
        """Encode a task split once (the pool every step takes its prompts from)."""
        return cls([p.prompt for p in problems], torch.from_numpy(encode_prompts([p.prompt for p in problems])),
                   [p.answer for p in problems], np.arange(len(problems)))

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray) -> "PromptSet":
        """The prompts at positions ``index`` (a step's batch, or the kept groups of one), in that order."""
        index = np.asarray(index, dtype=np.int64)
        return PromptSet([self.texts[i] for i in index], self.tokens[torch.from_numpy(index)],
                         [self.answers[i] for i in index], self.pool_ids[index])

    @classmethod
    def concat(cls, parts: list["PromptSet"]) -> "PromptSet":
        """The prompts of ``parts`` one after the other."""
        return cls([t for p in parts for t in p.texts], torch.cat([p.tokens for p in parts]),
                   [a for p in parts for a in p.answers], np.concatenate([p.pool_ids for p in parts]))


class PromptStream:
    """The training pool in epochs: a fresh random order each epoch, read ``count`` prompts at a time.

    With ``recur=False`` the pool is read once (``task.stream = "fresh"``: no prompt comes back), and asking
    for more than it holds raises instead of starting a second epoch.

    Examples
    --------
    >>> stream = PromptStream(4, np.random.default_rng(0))
    >>> sorted(stream.next(4).tolist()), len(stream.next(6)), stream.epoch
    ([0, 1, 2, 3], 6, 2)
    >>> PromptStream(4, np.random.default_rng(0), recur=False).next(5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    RuntimeError: the prompt stream reads every prompt once and its 4 prompts are spent; ... (task.n_train)
    """

    def __init__(self, pool_size: int, rng: np.random.Generator, *, recur: bool = True):
        self.pool_size, self.rng, self.recur = pool_size, rng, recur
        self.order = rng.permutation(pool_size)
        self.pos, self.epoch = 0, 0

    def next(self, count: int) -> np.ndarray:
        """The next ``count`` pool positions (crossing into a new epoch when the current one runs out)."""
        out = []
        while len(out) < count:
            if self.pos == self.pool_size and not self.recur:
                raise RuntimeError(f"the prompt stream reads every prompt once and its {self.pool_size} prompts are "
                                   "spent; the run needs a larger pool (task.n_train)")
            if self.pos == self.pool_size:
                self.order, self.pos, self.epoch = self.rng.permutation(self.pool_size), 0, self.epoch + 1
            take = min(count - len(out), self.pool_size - self.pos)
            out.extend(self.order[self.pos : self.pos + take].tolist())
            self.pos += take
        return np.asarray(out, dtype=np.int64)

    def state_dict(self) -> dict:
        """JSON-able position and generator state."""
        return {"order": self.order.tolist(), "pos": self.pos, "epoch": self.epoch, "rng": numpy_rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly from :meth:`state_dict`."""
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])
        self.rng = numpy_rng_from_state(state["rng"])
