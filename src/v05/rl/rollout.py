"""Drawing a step's rollouts: fixed groups, OSLA top-ups in rounds, or DAPO's dynamic sampling.

Each collector returns a :class:`Rollouts` whose rows are aligned: ``group[i]`` is the batch position of
the prompt behind ``responses[i]`` and ``rewards[i]``. Every rollout drawn is counted in ``spent``, the
ones a filter later drops included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from v05.baselines import compute
from v05.budget import OslaConfig, allocate
from v05.rl.policy import Policy
from v05.rl.task import decode_responses, exact_match_reward


@dataclass
class Rollouts:
    """A step's rollouts, one row per sampled response."""

    prompt_ids: np.ndarray
    """(M,) pool index of each batch prompt."""
    group: np.ndarray
    """(N,) batch position (0..M-1) of each rollout's prompt."""
    responses: torch.Tensor
    """(N, T) sampled tokens."""
    mask: torch.Tensor
    """(N, T) tokens the policy generated."""
    rewards: np.ndarray
    """(N,) 0/1 rewards."""
    spent: int
    """Rollouts drawn for this step, dropped ones included."""
    rounds: int
    """Generation calls made."""

    @property
    def counts(self) -> np.ndarray:
        """(M,) rollouts per batch prompt."""
        return np.bincount(self.group, minlength=len(self.prompt_ids))

    @property
    def pass_rates(self) -> np.ndarray:
        """(M,) observed mean reward per batch prompt."""
        return np.bincount(self.group, weights=self.rewards, minlength=len(self.prompt_ids)) / np.maximum(self.counts, 1)


class Sampler:
    """Samples responses for prompts of a fixed pool and scores them.

    Prompt prefixes are cached within a step (OSLA's later rounds reuse them); call :meth:`new_step`
    after every policy update.

    Parameters
    ----------
    policy : Policy
    prompts : LongTensor of shape (P, T_prompt)
        The whole pool, encoded.
    answers : list of str, length P
    generator : torch.Generator
    temperature : float
    """

    def __init__(self, policy: Policy, prompts: torch.Tensor, answers: list[str], generator: torch.Generator, temperature: float):
        self.policy, self.prompts, self.answers = policy, prompts, answers
        self.generator, self.temperature = generator, temperature
        self.new_step()

    def new_step(self) -> None:
        """Forget cached prefixes (the policy has changed)."""
        self._ids = np.zeros(0, dtype=np.int64)
        self._logits = self._state = None

    def _prefix(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        missing = np.setdiff1d(rows, self._ids)
        if len(missing):
            logits, state = self.policy.read_prompts(self.prompts[missing])  # (U, V), (L, U, H)
            ids = np.concatenate([self._ids, missing])
            order = np.argsort(ids, kind="stable")
            self._ids = ids[order]
            logits = logits if self._logits is None else torch.cat([self._logits, logits])  # (U', V)
            state = state if self._state is None else torch.cat([self._state, state], dim=1)  # (L, U', H)
            self._logits, self._state = logits[order], state[:, order]
        pos = torch.from_numpy(np.searchsorted(self._ids, rows))  # (N,)
        return self._logits[pos], self._state[:, pos]  # (N, V), (L, N, H)

    def draw(self, pool_ids: np.ndarray, n: np.ndarray):
        """``n[j]`` responses for pool prompt ``pool_ids[j]``, prompt by prompt: tokens, mask, rewards."""
        rows = np.repeat(pool_ids, n)  # (N,)
        responses, mask = self.policy.sample_from_prefix(*self._prefix(rows), self.generator, self.temperature)  # (N, T)
        rewards = exact_match_reward(decode_responses(responses.numpy()), [self.answers[i] for i in rows])
        return responses, mask, rewards


def collect_fixed(sampler: Sampler, prompt_ids: np.ndarray, k: int) -> Rollouts:
    """``k`` rollouts for every prompt, in one generation call."""
    m = len(prompt_ids)
    responses, mask, rewards = sampler.draw(prompt_ids, np.full(m, k))
    return Rollouts(prompt_ids, np.repeat(np.arange(m), k), responses, mask, rewards, m * k, 1)


def collect_osla(sampler: Sampler, prompt_ids: np.ndarray, prior: np.ndarray, prior_var, config: OslaConfig) -> Rollouts:
    """k_init rollouts per prompt, then OSLA's top-ups in rounds (``v05.budget.allocate``)."""
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []

    def generate(idx: np.ndarray, n: np.ndarray) -> np.ndarray:
        responses, mask, rewards = sampler.draw(prompt_ids[idx], n)
        drawn.append((responses, mask))
        return rewards

    alloc = allocate(generate, prior, config=config, prior_var=prior_var, scale="binary")
    responses = torch.cat([r for r, _ in drawn])  # (N, T)
    mask = torch.cat([m for _, m in drawn])  # (N, T)
    return Rollouts(prompt_ids, alloc.group, responses, mask, alloc.rewards, len(alloc.rewards), alloc.rounds)


def collect_dynamic(sampler: Sampler, next_prompts, m: int, k: int, estimator: str, max_rounds: int, options: dict) -> Rollouts:
    """DAPO's dynamic sampling: keep groups the estimator's filter keeps, draw more prompts until ``m`` are kept.

    Parameters
    ----------
    next_prompts : callable ``(count) -> ndarray of pool ids``
        The prompt stream (the same one the other methods use).
    m, k : int
        Groups wanted and rollouts per group.
    estimator : str
        Registry name whose ``keep`` decides (``"dapo"``).
    max_rounds : int
        Extra draws allowed after the first; if the batch is still short, train on what was kept.
    """
    kept_ids, kept_resp, kept_mask, kept_rewards, spent, rounds = [], [], [], [], 0, 0
    while rounds <= max_rounds and sum(len(x) for x in kept_ids) < m:
        ids = next_prompts(m)
        responses, mask, rewards = sampler.draw(ids, np.full(m, k))
        spent, rounds = spent + m * k, rounds + 1
        keep = compute(estimator, rewards, np.repeat(np.arange(m), k), **options).keep.reshape(m, k)[:, 0]  # (m,)
        rows = np.repeat(keep, k)  # (m*k,)
        kept_ids.append(ids[keep])
        kept_resp.append(responses[torch.from_numpy(rows)])
        kept_mask.append(mask[torch.from_numpy(rows)])
        kept_rewards.append(rewards[rows])
    ids = np.concatenate(kept_ids)[:m]
    n_kept = len(ids)
    return Rollouts(
        ids, np.repeat(np.arange(n_kept), k), torch.cat(kept_resp)[: n_kept * k], torch.cat(kept_mask)[: n_kept * k],
        np.concatenate(kept_rewards)[: n_kept * k], spent, rounds,
    )


class PromptStream:
    """The training pool in epochs: a fresh random order each epoch, read ``count`` prompts at a time.

    Examples
    --------
    >>> stream = PromptStream(4, np.random.default_rng(0))
    >>> sorted(stream.next(4).tolist()), len(stream.next(6)), stream.epoch
    ([0, 1, 2, 3], 6, 2)
    """

    def __init__(self, pool_size: int, rng: np.random.Generator):
        self.pool_size, self.rng = pool_size, rng
        self.order = rng.permutation(pool_size)
        self.pos, self.epoch = 0, 0

    def next(self, count: int) -> np.ndarray:
        """The next ``count`` pool indices (crossing into a new epoch when the current one runs out)."""
        out = []
        while len(out) < count:
            if self.pos == self.pool_size:
                self.order, self.pos, self.epoch = self.rng.permutation(self.pool_size), 0, self.epoch + 1
            take = min(count - len(out), self.pool_size - self.pos)
            out.extend(self.order[self.pos : self.pos + take].tolist())
            self.pos += take
        return np.asarray(out, dtype=np.int64)

    def state_dict(self) -> dict:
        """JSON-able position (the generator's state is saved by the caller)."""
        return {"order": self.order.tolist(), "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`."""
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])


def pass_rates(sampler: Sampler, pool_ids: np.ndarray, n: int) -> np.ndarray:
    """Mean reward of ``n`` fresh samples per prompt, shape ``(len(pool_ids),)`` (drawn in one call)."""
    _, _, rewards = sampler.draw(pool_ids, np.full(len(pool_ids), n))
    return rewards.reshape(len(pool_ids), n).mean(1)  # (M,)
