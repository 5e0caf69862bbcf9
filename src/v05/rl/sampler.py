"""Sampling and scoring responses to a :class:`PromptSet` under the current policy.

Each prompt is read once (the GRU's state after the prompt, the CPU analogue of an inference engine's
prefix cache) and reused by later draws of the same :class:`Sampler`, e.g. OSLA's top-up rounds. A cached
prefix is valid for the weights it was computed with only: the cache is keyed to
:meth:`Policy.weights_version`, so a draw after any change to the weights reads the prompts again and can
never sample from an older policy's logits. The engine also makes a new sampler for every step.
"""

from __future__ import annotations

import numpy as np
import torch

from v05.rl.policy import Policy
from v05.rl.prompts import PromptSet
from v05.rl.task import decode_responses, exact_match_reward


class Sampler:
    """Draws and scores responses to a fixed set of prompts.

    Parameters
    ----------
    policy : Policy
    prompts : PromptSet
        M prompts; draws name them by position 0..M-1.
    generator : torch.Generator
        The only source of randomness (a run replays exactly).
    temperature : float
    """

    def __init__(self, policy: Policy, prompts: PromptSet, generator: torch.Generator, temperature: float):
        self.policy, self.prompts = policy, prompts
        self.generator, self.temperature = generator, temperature
        self._version = None
        self._read = np.zeros(len(prompts), dtype=bool)
        self._logits: torch.Tensor | None = None  # (M, V) next-token logits after each prompt
        self._state: torch.Tensor | None = None  # (L, M, H) GRU state after each prompt

    def prefix(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits ``(n, V)`` and GRU state ``(L, n, H)`` after prompts ``index`` (n,), for the
        policy's current weights (prompts not yet read under them are read now, in one batch)."""
        if self._version != self.policy.weights_version():
            self._version, self._read[:] = self.policy.weights_version(), False
        missing = np.unique(index[~self._read[index]])  # (U,)
        if len(missing):
            logits, state = self.policy.read_prompts(self.prompts.tokens[torch.from_numpy(missing)])  # (U, V), (L, U, H)
            if self._logits is None:
                self._logits = logits.new_zeros(len(self.prompts), logits.shape[1])  # (M, V)
                self._state = state.new_zeros(state.shape[0], len(self.prompts), state.shape[2])  # (L, M, H)
            at = torch.from_numpy(missing)
            self._logits[at], self._state[:, at] = logits, state
            self._read[missing] = True
        rows = torch.from_numpy(np.asarray(index, dtype=np.int64))  # (n,)
        return self._logits[rows], self._state[:, rows]  # (n, V), (L, n, H)

    def draw(self, index: np.ndarray, n: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """``n[j]`` responses to prompt ``index[j]``, prompt by prompt.

        Returns
        -------
        responses : LongTensor of shape (N, T), N = n.sum()
        mask : BoolTensor of shape (N, T)
            The tokens the policy generated.
        rewards : ndarray of shape (N,)
            Exact-match rewards (0/1).
        """
        rows = np.repeat(np.asarray(index, dtype=np.int64), n)  # (N,)
        responses, mask = self.policy.sample_from_prefix(*self.prefix(rows), self.generator, self.temperature)  # (N, T)
        rewards = exact_match_reward(decode_responses(responses.numpy()), [self.prompts.answers[i] for i in rows])
        return responses, mask, rewards


def pass_rates(sampler: Sampler, n: int) -> np.ndarray:
    """Mean reward of ``n`` fresh samples of every prompt of the sampler, shape ``(M,)`` (one draw)."""
    m = len(sampler.prompts)
    _, _, rewards = sampler.draw(np.arange(m), np.full(m, n))
    return rewards.reshape(m, n).mean(1)  # (M,)
