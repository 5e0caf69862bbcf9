"""One policy update: the batch's old log-probabilities, then clipped-loss steps over shuffled minibatches."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from v05.rl.config import OptimConfig
from v05.rl.loss import clipped_pg_loss
from v05.rl.policy import Policy, token_logprobs


@torch.no_grad()
def sequence_logprobs(policy: Policy, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """Per-token log-probabilities of ``responses`` ``(N, T)`` under ``policy``, without grad."""
    return token_logprobs(policy.response_logits(prompts, responses), responses)  # (N, T)


def policy_update(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    prompts: torch.Tensor,
    responses: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    *,
    config: OptimConfig,
    generator: torch.Generator,
    ref_policy: Policy | None = None,
    aux_loss: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]] | None = None,
) -> dict[str, float]:
    """Minimise the clipped loss over ``config.ppo_epochs`` passes of ``config.n_minibatches`` shuffled minibatches.

    Parameters
    ----------
    prompts : LongTensor of shape (N, T_prompt)
    responses : LongTensor of shape (N, T)
    mask : BoolTensor of shape (N, T)
    advantages : Tensor of shape (N,)
    config : OptimConfig
        Minibatches, epochs, clipping, loss aggregation, KL weight, gradient clipping.
    generator : torch.Generator
        Shuffles the minibatches.
    ref_policy : Policy, optional
        The KL reference; needed when ``config.kl_coef > 0``.
    aux_loss : callable, optional
        ``aux_loss(idx) -> (loss, metrics)`` for a minibatch's row indices: a loss added to the clipped loss
        before the backward pass (RL^V's verification loss, :class:`v05.rl.verifier.VerifierBatch`), and
        namespaced metrics averaged like the others.

    Returns
    -------
    dict
        Means over the optimizer steps of ``loss`` (the clipped loss alone), ``grad_norm`` (before clipping,
        of the whole loss), ``clip_frac`` and ``kl``, plus ``entropy`` (mean token entropy of the sampling
        policy on the batch) and the means of ``aux_loss``'s metrics.
    """
    n = responses.shape[0]
    logits = policy.response_logits(prompts, responses).detach()  # (N, T, V)
    old_logp = token_logprobs(logits, responses)  # (N, T)
    probs = torch.softmax(logits, -1)  # (N, T, V)
    entropy = -(probs * torch.log_softmax(logits, -1)).sum(-1)  # (N, T)
    entropy = ((entropy * mask).sum() / mask.sum().clamp(min=1)).item()
    ref_logp = sequence_logprobs(ref_policy, prompts, responses) if config.kl_coef > 0 else None  # (N, T)
    stats: dict[str, list[float]] = {"loss": [], "grad_norm": [], "clip_frac": [], "kl": []}
    for _ in range(config.ppo_epochs):
        order = torch.randperm(n, generator=generator)  # (N,)
        for idx in torch.tensor_split(order, min(config.n_minibatches, n)):
            logp = token_logprobs(policy.response_logits(prompts[idx], responses[idx]), responses[idx])  # (b, T)
            loss, extra = clipped_pg_loss(
                logp, old_logp[idx], advantages[idx], mask[idx], clip_low=config.clip_low, clip_high=config.clip_high,
                loss_agg=config.loss_agg, ref_logp=None if ref_logp is None else ref_logp[idx], kl_coef=config.kl_coef,
            )
            total = loss
            if aux_loss is not None:
                aux, aux_stats = aux_loss(idx)
                total = loss + aux
                extra = {**extra, **aux_stats}
            optimizer.zero_grad()
            total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimizer.step()
            for key, value in (("loss", loss.item()), ("grad_norm", grad_norm.item()), *extra.items()):
                stats.setdefault(key, []).append(value)
    return {**{k: float(np.mean(v)) for k, v in stats.items()}, "entropy": entropy}
