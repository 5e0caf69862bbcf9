"""Exact pass rates on the built-in task: one teacher-forced pass instead of many samples.

The task rewards exactly one response, the answer followed by the end token (any other string, a missing
end token included, scores 0: :func:`v05.rl.task.exact_match_reward`). A prompt's pass rate under the policy
sampling at temperature T is therefore the probability of that one response,
p(x) = prod_t softmax(logits_t / T)[answer_t], and the gradient of the batch's mean pass rate is the exact
policy gradient of the expected reward. Uses: the oracle prior (``prior.source = "exact"``), the gradient
benchmark (``v05.bench.gradient``) and noise-free held-out accuracy (``v05.bench.regimes``).
"""

from __future__ import annotations

import numpy as np
import torch

from v05.baselines import Prior
from v05.rl.policy import Policy
from v05.rl.task import EOS_ID, encode_answers, encode_prompts


def answer_tokens(answers: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The rewarded response of each answer, ``(N, T)`` tokens, and the mask of its tokens up to and including
    the end token, ``(N, T)`` (the padding after it is not part of the response)."""
    tokens = torch.from_numpy(encode_answers(answers))  # (N, T)
    is_eos = (tokens == EOS_ID).long()  # (N, T)
    mask = torch.cumsum(is_eos, dim=1) - is_eos == 0  # (N, T) True through the first end token
    return tokens, mask


def log_pass_rates(policy: Policy, prompts: torch.Tensor, answers: torch.Tensor, mask: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """log p(x) for each prompt, with gradient: the tempered log-probability of the rewarded response.

    Parameters
    ----------
    prompts : LongTensor of shape (N, T_prompt)
    answers, mask : LongTensor and BoolTensor of shape (N, T)
        From :func:`answer_tokens`.
    temperature : float
        The sampling temperature the pass rate refers to.

    Returns
    -------
    Tensor of shape (N,)
    """
    logits = policy.response_logits(prompts, answers) / temperature  # (N, T, V)
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, answers[..., None]).squeeze(-1)  # (N, T)
    return (token_logp * mask).sum(1)  # (N,)


@torch.no_grad()
def exact_pass_rates(policy: Policy, prompts: list[str], answers: list[str], temperature: float = 1.0,
                     batch_size: int = 4096) -> np.ndarray:
    """The policy's exact pass rate on each prompt, shape ``(N,)`` (no sampling, no noise).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> p = exact_pass_rates(Policy(), ["1+2=", "9-9="], ["3", "0"])
    >>> p.shape, bool(((p > 0) & (p < 1)).all())
    ((2,), True)
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    out = []
    for lo in range(0, len(prompts), batch_size):
        tokens = torch.from_numpy(encode_prompts(prompts[lo : lo + batch_size]))  # (b, T_prompt)
        answer, mask = answer_tokens(answers[lo : lo + batch_size])  # (b, T)
        out.append(torch.exp(log_pass_rates(policy, tokens, answer, mask, temperature)).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


class ExactPassRatePrior:
    """A prior source (:class:`v05.value.prior.PriorSource`) that knows the truth: the current policy's exact
    pass rate on every target prompt, variance 0. The best any prior can be: an oracle for benchmarks.

    Parameters
    ----------
    policy : Policy
        The policy being trained (read at every prediction, so the prior follows it).
    answers : dict of str -> str
        The answer of every prompt the run can ask about (training pool and held-out set).
    temperature : float
        The run's sampling temperature.
    """

    def __init__(self, policy: Policy, answers: dict[str, str], temperature: float = 1.0):
        self.policy, self.answers, self.temperature = policy, answers, temperature

    def predict(self, history, step: int, targets: list[str]) -> Prior:
        """Exact pass rates of ``targets`` under the policy now, and zero variances (``history`` unused)."""
        unknown = [t for t in targets if t not in self.answers]
        if unknown:
            raise ValueError(f"exact prior: no answer known for prompt(s) {unknown[:3]}")
        mean = exact_pass_rates(self.policy, targets, [self.answers[t] for t in targets], self.temperature)
        return Prior(np.clip(mean, 0.0, 1.0), np.zeros(len(targets)))
