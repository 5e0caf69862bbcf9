"""The clipped policy-gradient loss (PPO/GRPO/DAPO form) with the usual loss-aggregation modes.

References: PPO clipped surrogate; GRPO (arXiv 2402.03300) with the k3 KL estimator to a reference;
DAPO (arXiv 2503.14476) clip-higher and token-level aggregation; Dr. GRPO (arXiv 2503.20783)
``seq-mean-token-sum-norm`` (verl ``agg_loss``, ``core_algos.py``).
"""

from __future__ import annotations

import torch


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Reduce per-token values ``(B, T)`` over the tokens ``mask`` marks, as verl's ``agg_loss`` does.

    ``token-mean``: one mean over every token of the batch. ``seq-mean-token-mean``: mean per sequence,
    then over sequences. ``seq-mean-token-sum-norm``: token sum per sequence over the maximum length T,
    then mean over sequences.

    Examples
    --------
    >>> v, m = torch.tensor([[1.0, 3.0], [2.0, 0.0]]), torch.tensor([[True, True], [True, False]])
    >>> aggregate(v, m, "token-mean").item(), aggregate(v, m, "seq-mean-token-mean").item()
    (2.0, 2.0)
    >>> aggregate(v, m, "seq-mean-token-sum-norm").item()
    1.5
    """
    mask = mask.to(values.dtype)  # (B, T)
    if mode == "token-mean":
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "seq-mean-token-mean":
        per_seq = (values * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B,)
        return per_seq.mean()
    if mode == "seq-mean-token-sum-norm":
        return ((values * mask).sum(1) / values.shape[1]).mean()
    raise ValueError(f"loss_agg = {mode!r}: expected 'token-mean', 'seq-mean-token-mean' or 'seq-mean-token-sum-norm'")


def clipped_pg_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    loss_agg: str,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate, negated for minimisation, plus an optional k3 KL penalty to a reference.

    Parameters
    ----------
    logp, old_logp : Tensor of shape (B, T)
        Per-token log-probabilities under the current policy (with grad) and the sampling policy.
    advantages : Tensor of shape (B,)
        One advantage per sequence, broadcast over its tokens.
    mask : BoolTensor of shape (B, T)
        The tokens the policy generated.
    clip_low, clip_high : float
        The ratio is clipped to [1 - clip_low, 1 + clip_high].
    loss_agg : str
        See :func:`aggregate`.
    ref_logp : Tensor of shape (B, T), optional
        Reference log-probabilities, needed when ``kl_coef > 0``.
    kl_coef : float

    Returns
    -------
    loss : scalar Tensor
    stats : dict
        ``clip_frac`` (share of tokens where clipping binds) and ``kl`` (k3 estimate; 0 without reference).
    """
    ratio = torch.exp(logp - old_logp)  # (B, T)
    adv = advantages[:, None]  # (B, 1)
    unclipped = ratio * adv  # (B, T)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * adv  # (B, T)
    per_token = -torch.minimum(unclipped, clipped)  # (B, T)
    kl = torch.zeros_like(per_token)  # (B, T)
    if kl_coef > 0:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs ref_logp")
        log_r = ref_logp - logp  # (B, T)
        kl = torch.exp(log_r) - log_r - 1.0  # (B, T)  k3 estimator of KL(pi || ref)
        per_token = per_token + kl_coef * kl
    loss = aggregate(per_token, mask, loss_agg)
    with torch.no_grad():
        binds = (clipped < unclipped).float()  # (B, T)
        stats = {"clip_frac": aggregate(binds, mask, "token-mean").item(), "kl": aggregate(kl, mask, "token-mean").item()}
    return loss, stats
