"""The rollout planner: a rollout rule (OSLA by default) with inverted control, so that whoever owns
generation (our CPU engine, TRL, verl) drives it.

    plan = RolloutPlan(prior, config=OslaConfig(k_init=4, k_max=16))
    while round_ := plan.request():          # empty when every prompt has stopped
        rewards = generate(round_.index, round_.n)   # n[j] rollouts of prompt index[j], prompt by prompt
        plan.record(np.repeat(round_.index, round_.n), rewards)
    alloc = plan.result()                    # rewards, group (prompt index 0..M-1), round, counts

Round 0 gives every prompt ``k_init`` rollouts; each later round tops up the prompts the rule says are
worth one more (``v05.budget.rule``), until none is, the global ``budget`` is spent or ``max_rounds`` top-up
rounds have run. Any other rule of :mod:`v05.budget.rules` (``make_rule("knapsack")``...) drives the same
rounds: the rule says what it wants, the plan enforces ``k_max``, the budget, blocks and ``max_rounds``.
Rewards can be recorded prompt by prompt or all at once, in any order within a round; a round must be
complete before the next is requested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from v05._validation import as_1d, check_in_range, check_positive_int
from v05.baselines.prior import Prior
from v05.baselines.scale import RewardScale
from v05.budget.osla import OslaRule
from v05.budget.rule import OslaConfig
from v05.budget.rule_base import PlanState, RolloutRule


@dataclass(frozen=True)
class Round:
    """One generation round: ``n[j]`` rollouts of prompt ``index[j]`` (prompt order); falsy when empty."""

    number: int
    index: np.ndarray
    n: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """``(prompt_index, n)`` pairs."""
        return zip(self.index.tolist(), self.n.tolist())

    @property
    def rollouts(self) -> int:
        """Rollouts asked for in this round."""
        return int(self.n.sum())


@dataclass(frozen=True)
class Allocation:
    """Rollouts drawn under a plan, in the order they were recorded.

    ``rewards``, ``group`` (prompt index 0..M-1) and ``round`` have one entry per rollout; ``counts`` one
    per prompt; ``rounds`` is the number of generation rounds run (the first included).
    """

    rewards: np.ndarray
    group: np.ndarray
    round: np.ndarray
    counts: np.ndarray
    rounds: int


class RolloutPlan:
    """Which prompts get how many rollouts, decided round by round from the rewards recorded so far.

    Parameters
    ----------
    prior : Prior or array-like of shape (M,)
        Prior pass rate of each prompt, in [0, 1]: a :class:`v05.baselines.Prior` (row j is prompt j; its
        variance, if any, is ``prior_var``: pass ``prior.without_var()`` to plan without it) or an array.
    config : OslaConfig, dict or RolloutRule
        OSLA's settings (``k_init``, ``k_max``, ``cost``, ``per_round``, ``max_rounds``, ...), or another rule
        built by :func:`v05.budget.make_rule` (Reinforce-Ada, Knapsack RL, CurES, dynamic sampling).
    budget : int, optional
        Total rollouts allowed for the whole batch (the first round included). When the prompts that want
        more exceed what is left, the rollouts go to the largest expected MSE reductions first.
    prior_var : array-like of shape (M,), optional
        The prior's variance (with an array prior; a ``Prior`` carries its own); floors the rule's estimate of the
        prior's squared error (paper rule).
    scale : reward scale of the recorded rewards ('binary', 'pm1' or (lo, hi)).
    block : int, default 1
        Every top-up is a multiple of this many rollouts (a framework's fixed group size, e.g. TRL's
        ``num_generations``); ``k_max - k_init`` must be a multiple of it.
    round_multiple : int, default 1
        Every top-up round asks for a multiple of this many rollouts in all (of lcm(block, round_multiple)), for
        trainers that split a round evenly over processes. A round that does not come out even is rounded
        up, one block at a time, with more blocks for the prompts that still want more (largest expected
        gain first, within ``k_max`` and the budget), and, where that cannot reach the next multiple, down,
        dropping blocks from the smallest gains (possibly to an empty round, which ends the plan).

    Examples
    --------
    >>> plan = RolloutPlan([0.5, 0.0])                 # a right prior and a wrong one
    >>> first = plan.request(); list(first)
    [(0, 4), (1, 4)]
    >>> plan.record(np.repeat(first.index, first.n), [1, 0, 1, 0, 1, 1, 1, 1])
    >>> list(plan.request())          # only the contradicted prior: half its projected 12 (max_rounds=2)
    [(1, 6)]
    """

    def __init__(self, prior, config=OslaConfig(), budget: int | None = None, *, prior_var=None, scale="binary",
                 block: int = 1, round_multiple: int = 1):
        self.rule = config if isinstance(config, RolloutRule) else OslaRule(OslaConfig.coerce(config))
        """The rollout rule deciding the rounds."""
        self.config = self.rule.config if isinstance(self.rule, OslaRule) else self.rule
        self.scale = RewardScale.parse(scale)
        if isinstance(prior, Prior):
            if prior_var is not None:
                raise TypeError("prior is a Prior, which carries its own variance: leave prior_var=None (use "
                                "prior.without_var() to plan without the variance)")
            prior, prior_var = prior.mean, prior.var
        self.prior = as_1d(prior, "prior", dtype=np.float64)
        if len(self.prior) == 0:
            raise ValueError("prior is empty: a rollout plan needs at least one prompt")
        check_in_range(self.prior, "prior", 0.0, 1.0)
        m = len(self.prior)
        self.prior_var = None
        if prior_var is not None:
            self.prior_var = as_1d(prior_var, "prior_var", dtype=np.float64)
            if len(self.prior_var) != m:
                raise ValueError(f"prior_var has {len(self.prior_var)} entries for {m} prompts")
            check_in_range(self.prior_var, "prior_var", 0.0, np.finfo(np.float64).max)
        self.block = check_positive_int(block, "block")
        self.round_multiple = math.lcm(self.block, check_positive_int(round_multiple, "round_multiple"))
        self.budget = None if budget is None else check_positive_int(budget, "budget")
        self.rule.check_plan(m, self.budget, self.block)
        self.counts = np.zeros(m, dtype=np.int64)
        """Rollouts recorded per prompt."""
        self._totals = np.zeros(m)  # unit-scale reward sums
        self._owed = np.zeros(m, dtype=np.int64)  # asked for in the current round, not yet recorded
        self._chunks: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._rounds = 0
        self.done = False
        """True once a request came back empty: every prompt has stopped."""

    @property
    def spent(self) -> int:
        """Rollouts asked for so far (recorded or owed)."""
        return int(self.counts.sum() + self._owed.sum())

    @property
    def means(self) -> np.ndarray:
        """Mean unit-scale reward per prompt so far (NaN before its first rollout)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._totals / self.counts

    def request(self) -> Round:
        """The next round's ``(prompt_index, n)`` requests; an empty round once the plan is done.

        Raises
        ------
        RuntimeError
            If rollouts of the current round have not all been recorded yet.
        """
        self._check_round_complete("request the next round")
        if self.done:
            return self._empty()
        if self._rounds == 0:
            n = np.asarray(self.rule.first_round(self._state()), dtype=np.int64)
            if n.shape != self.prior.shape or n.min() < 0 or n.max() > self.rule.k_max or \
                    (self.budget is not None and n.sum() > self.budget):
                raise RuntimeError(f"rule {self.rule.name!r} asked for a first round of {n.tolist()[:8]} rollouts: it "
                                   f"must give each of the {len(self.prior)} prompts 0..k_max ({self.rule.k_max}), "
                                   f"{self.budget} in all at most")
            index = np.flatnonzero(n)
            n = n[index]
        else:
            index, n = self._top_ups()
        if len(index) == 0:
            self.done = True
            return self._empty()
        self._owed[index] += n
        self._rounds += 1
        return Round(self._rounds - 1, index, n)

    def record(self, prompt_index, rewards) -> None:
        """Record rewards of the current round: one prompt's (``prompt_index`` an int), or many (an index
        per reward). A prompt can be recorded in several calls, never beyond what was asked of it."""
        rewards = as_1d(rewards, "rewards", dtype=np.float64)
        if np.ndim(prompt_index) == 0:
            index = np.full(len(rewards), prompt_index)
        else:
            index = as_1d(prompt_index, "prompt_index")
            if len(index) != len(rewards):
                raise ValueError(f"prompt_index has {len(index)} entries for {len(rewards)} rewards")
        if len(rewards) == 0:
            return
        if index.dtype.kind not in "iu" or index.min() < 0 or index.max() >= len(self.prior):
            bad = index[(index < 0) | (index >= len(self.prior))][:3].tolist() if index.dtype.kind in "iu" else index.dtype
            raise ValueError(f"prompt_index must hold prompt positions in [0, {len(self.prior)}); got {bad}")
        check_in_range(rewards, f"round {self._rounds - 1} rewards", self.scale.lo, self.scale.hi)
        got = np.bincount(index, minlength=len(self.prior))
        over = np.flatnonzero(got > self._owed)
        if len(over):
            j = int(over[0])
            raise ValueError(f"prompt {j} got {int(got[j])} reward(s) in round {self._rounds - 1} but was asked for "
                             f"{int(self._owed[j])} more")
        self._owed -= got
        self.counts += got
        self._totals += np.bincount(index, weights=self.scale.to_unit(rewards), minlength=len(self.prior))
        self._chunks.append((rewards, index.astype(np.int64), self._rounds - 1))

    def forfeit(self, prompt_index) -> int:
        """Give up the rollouts still owed to these prompts in the current round (their generation failed), so
        the round can complete without them; returns how many were dropped.

        Dropped rollouts count as never asked for (``spent`` falls, the budget gets them back). A prompt with
        no recorded rollout at all is never topped up: with no mean there is nothing for the rule to test.
        """
        index = np.atleast_1d(np.asarray(prompt_index))
        if index.dtype.kind not in "iu" or (len(index) and (index.min() < 0 or index.max() >= len(self.prior))):
            raise ValueError(f"prompt_index must hold prompt positions in [0, {len(self.prior)}); got {index[:3].tolist()}")
        dropped = int(self._owed[index].sum()) if len(index) else 0
        self._owed[index] = 0
        return dropped

    def result(self) -> Allocation:
        """Everything recorded, in recording order (the current round must be complete)."""
        self._check_round_complete("read the result")
        chunks = self._chunks or [(np.zeros(0), np.zeros(0, dtype=np.int64), 0)]
        return Allocation(
            rewards=np.concatenate([c[0] for c in chunks]),
            group=np.concatenate([c[1] for c in chunks]),
            round=np.concatenate([np.full(len(c[0]), c[2]) for c in chunks]),
            counts=self.counts.copy(),
            rounds=self._rounds,
        )

    def _state(self) -> PlanState:
        chunks = self._chunks or [(np.zeros(0), np.zeros(0, dtype=np.int64), 0)]
        return PlanState(self.prior, self.prior_var, self.counts.copy(), self.means,
                         self.scale.to_unit(np.concatenate([c[0] for c in chunks])),
                         np.concatenate([c[1] for c in chunks]), self._rounds, self.budget, self.spent, self.block)

    def _top_ups(self) -> tuple[np.ndarray, np.ndarray]:
        """Prompts the rule tops up this round and how many each gets (prompt order), within k_max, whole
        blocks, the budget (largest priorities first) and round_multiple."""
        rule = self.rule
        if rule.max_rounds is not None and self._rounds > rule.max_rounds:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        wanted, gain = rule.top_up(self._state())
        wanted = np.where(self.counts > 0, np.asarray(wanted, dtype=np.int64), 0)  # no mean, nothing to test
        want = np.flatnonzero(wanted > 0)
        extra = np.minimum(-(-wanted[want] // self.block) * self.block, rule.k_max - self.counts[want])
        if self.budget is not None:
            order = np.argsort(-gain[want], kind="stable")
            want, extra = want[order], extra[order]
            before = np.cumsum(extra) - extra  # rollouts promised to larger gains
            left = np.clip(self.budget - self.spent - before, 0, extra)
            extra = left // self.block * self.block
            order = np.argsort(want, kind="stable")
            want, extra = want[order], extra[order]
        if extra.sum() % self.round_multiple:
            extra = self._even_round(gain[want], self.counts[want], extra)
        return want[extra > 0], extra[extra > 0]

    def _even_round(self, gain: np.ndarray, counts: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """``extra`` (per wanting prompt) changed by whole blocks until its total is a multiple of round_multiple:
        up (largest gains first, cycling, within k_max and the budget) if the next multiple is reachable, else
        down (smallest gains first)."""
        extra = extra.copy()
        short = (-extra.sum()) % self.round_multiple  # rollouts to the next multiple
        room = self.rule.k_max - counts - extra
        left = np.inf if self.budget is None else self.budget - self.spent - extra.sum()
        if (room // self.block).sum() * self.block >= short and left >= short:
            order = np.argsort(-gain, kind="stable")
            while short:
                for j in order:
                    if short and room[j] >= self.block:
                        extra[j] += self.block
                        room[j] -= self.block
                        short -= self.block
            return extra
        excess = extra.sum() % self.round_multiple
        for j in np.argsort(gain, kind="stable"):
            take = min(excess, extra[j])
            extra[j] -= take
            excess -= take
        return extra

    def _check_round_complete(self, action: str) -> None:
        owing = np.flatnonzero(self._owed)
        if len(owing):
            raise RuntimeError(f"cannot {action}: round {self._rounds - 1} still waits for {int(self._owed.sum())} "
                               f"reward(s) of prompt(s) {owing[:5].tolist()}{' ...' if len(owing) > 5 else ''}")

    def _empty(self) -> Round:
        return Round(self._rounds, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


Generate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def allocate(generate: Generate, prior, *, prompt_ids=None, config=OslaConfig(), prior_var=None,
             budget: int | None = None, scale="binary", block: int = 1) -> Allocation:
    """Run a :class:`RolloutPlan` to the end with ``generate(prompts (m,), n (m,)) -> rewards (n.sum(),)``,
    called once per round with prompts named by ``prompt_ids`` (default: positions) and their rewards
    returned prompt by prompt. ``Allocation.group`` holds positions. ``prior`` (and ``prior_var``) as for
    :class:`RolloutPlan`: a :class:`v05.baselines.Prior` or arrays.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.array([0.5, 0.95])
    >>> gen = lambda idx, n: (rng.random(n.sum()) < np.repeat(truth[idx], n)).astype(float)
    >>> allocate(gen, prior=[0.5, 0.0]).counts.tolist()   # a right prior and a wrong one
    [4, 16]
    """
    plan = RolloutPlan(prior, config, budget, prior_var=prior_var, scale=scale, block=block)
    ids = np.arange(len(plan.prior)) if prompt_ids is None else as_1d(prompt_ids, "prompt_ids")
    if len(ids) != len(plan.prior):
        raise ValueError(f"prompt_ids has {len(ids)} entries for {len(plan.prior)} prompts")
    while round_ := plan.request():
        rewards = as_1d(generate(ids[round_.index], round_.n), f"generate(...) output in round {round_.number}",
                        dtype=np.float64)
        if len(rewards) != round_.rollouts:
            raise ValueError(f"generate returned {len(rewards)} rewards in round {round_.number}; it was asked for "
                             f"{round_.rollouts} ({len(round_)} prompts)")
        plan.record(np.repeat(round_.index, round_.n), rewards)
    return plan.result()
