"""Our estimators under verl's advantage-estimator signature, registered in verl's ``ADV_ESTIMATOR_REGISTRY``.

Naming rule: an estimator of :mod:`v05.baselines` keeps its name in verl when it starts with ``v05``
(``v05``, ``v05_eb``, ``v05_paper``, ``v05_eb_loo``...) and gets the prefix ``v05_`` otherwise (``v05_grpo``,
``v05_mean``, ``v05_rloo``...), so none collides with verl's own names (``grpo``, ``rloo``...).

The functions only translate: token-level rewards are summed per row (an outcome reward), rows are grouped by
``index`` (verl's uid, any order, ragged), the prior comes in as ``prior`` (per row, as the ``v05_sync`` trainer
reads it, or a per-prompt :class:`v05.baselines.Prior` whose ``ids`` are the uids) or ``reward_baselines`` (per
row: verl's legacy ``compute_advantage``), the math is :func:`v05.baselines.compute`, and the scalar advantage
is broadcast over the response mask.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from v05.baselines import Prior, compute, get_estimator, list_estimators

PREFIX = "v05"


def verl_name(name: str) -> str:
    """The name of our estimator ``name`` in verl's registry (see the module docstring)."""
    return name if name.startswith(PREFIX) else f"{PREFIX}_{name}"


def verl_names() -> dict[str, str]:
    """Every registered estimator (aliases included): verl name -> our name."""
    out: dict[str, str] = {}
    for name in list_estimators(aliases=True):
        key = verl_name(name)
        if key in out:
            raise RuntimeError(f"estimators {out[key]!r} and {name!r} both map to the verl name {key!r}")
        out[key] = name
    return out


def our_name(name: str) -> str | None:
    """Our estimator behind the verl name ``name``, or None when it is not one of ours (e.g. ``grpo``)."""
    return verl_names().get(name)


def _as_float64(values, field: str, n: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        array = values.detach().to("cpu", torch.float64).numpy()
    else:
        array = np.asarray(values, np.float64)
    if array.shape != (n,):
        raise ValueError(f"{field} must hold one value per row, shape ({n},); got shape {array.shape}")
    return array


def _check_shapes(token_level_rewards, response_mask, index) -> int:
    for field, value in (("token_level_rewards", token_level_rewards), ("response_mask", response_mask)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            raise TypeError(f"{field} must be a 2-D torch.Tensor (bs, response_length); got {type(value).__name__}"
                            f"{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")
    if response_mask.shape != token_level_rewards.shape:
        raise ValueError(f"response_mask has shape {tuple(response_mask.shape)}, token_level_rewards "
                         f"{tuple(token_level_rewards.shape)}: they must match")
    n = token_level_rewards.shape[0]
    if index is None or len(index) != n:
        raise ValueError(f"index must hold the uid of every row ({n}); got {None if index is None else len(index)}: "
                         "V0.5 groups rollouts by prompt")
    return n


def _row_prior(name: str, prior, reward_baselines, n: int) -> Prior | np.ndarray | None:
    if not get_estimator(name).uses_prior:
        return None
    if prior is not None and reward_baselines is not None:
        raise ValueError("got both prior= and reward_baselines=; pass the prior through one of them")
    if isinstance(prior, Prior):
        return prior
    source, field = (prior, "prior") if prior is not None else (reward_baselines, "reward_baselines")
    if source is None:
        raise ValueError(f"estimator {verl_name(name)!r} fuses a prior: pass prior= (the v05_sync trainer reads it "
                         "from the dataset column v05.prior_key) or put it in data.batch['reward_baselines']")
    return _as_float64(source, field, n)


def make_adv_estimator(name: str) -> Callable:
    """verl's advantage-estimator function for our estimator ``name``.

    The returned ``fn(token_level_rewards, response_mask, index, config=None, *, reward_baselines=None,
    prior=None, prior_var=None, scale="binary", options=None) -> (advantages, returns)`` takes tensors of
    shape (bs, T), one uid per row in ``index`` and the prior: per-row pass rates in [0, 1] (with ``prior_var``
    per row) or a :class:`v05.baselines.Prior` with one row per uid (``ids``) and its own variance; ``config`` (verl's
    ``algorithm`` section) is accepted for the signature and not read: V0.5's settings are the ``+v05`` group.
    ``options`` are the estimator's keyword options. Both outputs are the advantage times the response mask.
    """
    get_estimator(name)  # unknown names fail here, listing the known ones

    def estimator(token_level_rewards, response_mask, index=None, config=None, *, reward_baselines=None, prior=None,
                  prior_var=None, scale="binary", options=None):
        n = _check_shapes(token_level_rewards, response_mask, index)
        scores = token_level_rewards.detach().sum(dim=-1).to("cpu", torch.float64).numpy()  # (bs,)
        row_prior = _row_prior(name, prior, reward_baselines, n)
        row_var = None if prior_var is None else _as_float64(prior_var, "prior_var", n)
        result = compute(name, scores, np.asarray(index), prior=row_prior, prior_var=row_var, scale=scale,
                         **dict(options or {}))
        advantage = torch.as_tensor(result.advantage, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
        advantages = advantage.unsqueeze(-1) * response_mask  # (bs, T)
        return advantages, advantages

    estimator.__name__ = estimator.__qualname__ = f"v05_adv_est_{name}"
    estimator.__doc__ = f"verl advantage estimator for v05.baselines {name!r}; see make_adv_estimator."
    return estimator


_FUNCTIONS: dict[str, Callable] = {}
"""One function object per verl name, so registering twice hands verl the same function (its duplicate check
compares identity)."""


def register_estimators() -> list[str]:
    """Register every estimator in verl's registry under its verl name; idempotent. Returns the verl names."""
    from verl.trainer.ppo.core_algos import register_adv_est

    for key, name in verl_names().items():
        register_adv_est(key)(_FUNCTIONS.setdefault(key, make_adv_estimator(name)))
    return list(_FUNCTIONS)
