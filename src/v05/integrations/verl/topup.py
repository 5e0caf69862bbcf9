"""Which prompts of a training step get follow-up rollouts, in verl's terms (uids, requests), decided by
:class:`v05.budget.RolloutPlan`. Pure: no TransferQueue, no Ray (the sampler does the I/O).

A *request* is one submission to verl's agent loop: a uid with ``__rollout_n__`` sessions. Round 0 is the
step's prompts themselves (their uids are the *roots*). Each later round is the planner's top-ups: one new
request per prompt that wants more, with a new uid (verl's trajectory keys ``{uid}_{session}_{index}`` would
collide if the root's uid were reused) and ``v05_parent_uid`` = its root. Rounds are synchronous, as the
planner's are: round r+1 is decided once every request of round r has finished.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import numpy as np

from v05.budget import OslaConfig, RolloutPlan, RolloutRule
from v05.budget.settings import update_rows


@dataclass(frozen=True)
class FollowUp:
    """One top-up request: ``n`` more rollouts of the root prompt ``parent_uid`` under the new ``uid``."""

    uid: str
    parent_uid: str
    n: int


def new_uid() -> str:
    """A fresh request uid: hex only, so verl's ``key.split('_')[0]`` recovers it from a trajectory key."""
    return uuid.uuid4().hex


class TopUpScheduler:
    """One step's rollout plan over its root prompts, fed with finished requests, emitting top-up rounds.

    Parameters
    ----------
    roots : list of str
        The step's prompt uids (no ``_`` in them: verl splits trajectory keys on it).
    prior : Prior or array-like of shape (len(roots),)
        Their prior pass rates in [0, 1], row j for ``roots[j]`` (a :class:`v05.baselines.Prior` carries its
        variance: leave ``prior_var`` None then).
    config : OslaConfig or RolloutRule
        The plan's rule (``RolloutSettings.plan_rule()``: OSLA's config, or a rule of ``v05.budget.make_rule``).
    budget : int, optional
        Rollouts allowed for the whole step (first round included).
    prior_var, scale, block
        As for :class:`v05.budget.RolloutPlan`.
    make_uid : callable, default :func:`new_uid`

    Examples
    --------
    >>> s = TopUpScheduler(["a", "b"], [0.5, 0.0], OslaConfig(k_init=4, k_max=8), make_uid=iter(["c"]).__next__)
    >>> s.first_counts
    {'a': 4, 'b': 4}
    >>> s.record("a", [1, 0, 1, 0]); s.record("b", [1, 1, 1, 1])
    >>> s.next_round()                      # only the contradicted prior: half its 4 (max_rounds=2)
    [FollowUp(uid='c', parent_uid='b', n=2)]
    """

    def __init__(self, roots, prior, config: OslaConfig | RolloutRule, *, budget: int | None = None, prior_var=None,
                 scale="binary", block: int = 1, make_uid: Callable[[], str] = new_uid):
        self.roots = [str(uid) for uid in roots]
        bad = [uid for uid in self.roots if "_" in uid]
        if bad or len(set(self.roots)) != len(self.roots):
            raise ValueError("root uids must be distinct and contain no '_' (verl splits keys on it); "
                             f"got {bad[:3] or 'duplicates'}")
        self.plan = RolloutPlan(prior, config, budget, prior_var=prior_var, scale=scale, block=block)
        self.rule = config
        self._keys: list[str | None] = []  # the trajectory key of every recorded rollout, in recording order
        self._make_uid = make_uid
        first = self.plan.request()
        self.first_counts = dict(zip(self.roots, first.n.tolist()))
        """Rollouts of each root in round 0 (its ``__rollout_n__``)."""
        self._waiting = {uid: (j, n) for uid, (j, n) in zip(self.roots, first)}
        self.parent = {uid: uid for uid in self.roots}
        """Every request uid of the step -> its root uid."""
        self.rounds = 1
        """Generation rounds so far, the first included."""

    @property
    def waiting(self) -> set[str]:
        """Request uids of the current round not yet recorded."""
        return set(self._waiting)

    @property
    def done(self) -> bool:
        """True once the plan asks for nothing more: every root's group is complete."""
        return self.plan.done

    def record(self, uid: str, rewards, keys=None) -> None:
        """The rewards of a finished request, one per session (and the trajectory key each was read from, which
        :meth:`left_out` names). Fewer than asked means sessions failed: the rest are forfeited
        (:meth:`v05.budget.RolloutPlan.forfeit`)."""
        if uid not in self._waiting:
            raise ValueError(f"request {uid!r} is not waiting in round {self.rounds - 1} (unknown or already recorded)")
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        keys = [None] * len(rewards) if keys is None else list(keys)
        j, n = self._waiting[uid]
        if len(rewards) > n:
            raise ValueError(f"request {uid!r} returned {len(rewards)} rewards for {n} rollouts")
        if len(keys) != len(rewards):
            raise ValueError(f"request {uid!r}: {len(keys)} keys for {len(rewards)} rewards")
        self.plan.record(j, rewards)
        self._keys += keys
        if len(rewards) < n:
            self.plan.forfeit(j)
        del self._waiting[uid]

    def next_round(self) -> list[FollowUp]:
        """The next round's top-ups once the current round is recorded; [] when the plan is done."""
        if self._waiting:
            raise RuntimeError(f"round {self.rounds - 1} still waits for {len(self._waiting)} request(s)")
        round_ = self.plan.request()
        out = [FollowUp(self._make_uid(), self.roots[j], n) for j, n in round_]
        self._waiting = {f.uid: (j, f.n) for f, (j, _) in zip(out, round_)}
        self.parent.update({f.uid: f.parent_uid for f in out})
        self.rounds += bool(out)
        return out

    def left_out(self) -> list[tuple[str, str, float]]:
        """The rollouts of the complete plan that stay out of the update, as (trajectory key, root uid, reward):
        under Reinforce-Ada all but its ``n`` a root (``v05.budget.settings.update_rows``), else none. Their
        rewards still belong to their root's pool, which the estimator reads."""
        pool = self.plan.result()
        keep = update_rows(self.rule, pool, self.plan.scale)
        if keep is None:
            return []
        out = [(self._keys[i], self.roots[pool.group[i]], float(pool.rewards[i])) for i in np.flatnonzero(~keep)]
        if any(key is None for key, _, _ in out):
            raise ValueError(f"rule {self.rule.name} trains on part of the rollouts: record(uid, rewards, keys) needs "
                             "their trajectory keys")
        return out

    def counts(self) -> dict[str, int]:
        """Rollouts recorded per root so far."""
        return dict(zip(self.roots, self.plan.counts.tolist()))
