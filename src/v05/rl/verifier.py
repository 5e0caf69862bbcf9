"""RL^V in the CPU engine: the policy also learns to judge its own rollouts ("is this answer correct?").

The joint objective is J = J_RL + coef * J_verify (``docs/method.md`` section 7). J_verify is the
next-token cross-entropy of the answer token ``Y`` or ``N`` after the verification input

    prompt  response  #        e.g.  ____7-9+4=2$#  ->  Y

(the left-padded prompt, the response the policy generated up to and including its end token, the
verification marker ``#``), labelled by the rollout's verifiable reward. It is built from the rollouts
the step already drew: no extra generation, one extra forward and backward pass per minibatch. The
verifier's score of a response is P(Yes) renormalised over the two answer tokens,
``sigmoid(logit_Y - logit_N)``.

The three tokens extend the task's vocabulary (:data:`VERIFY_VOCAB`); the policy keeps drawing its
responses from the task's characters only (:class:`v05.rl.policy.Policy`). A run with the verifier starts
from the same warm-up weights as one without: :func:`extend_vocab` appends rows for the new tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from v05._validation import check_bool, check_choice, check_number
from v05.rl.policy import Policy, PolicyConfig
from v05.rl.task import PAD_ID, VOCAB
from v05.tasks.verifier_chat import class_weights

VERIFY_MARK, YES, NO = "#", "Y", "N"
VERIFY_VOCAB = VOCAB + VERIFY_MARK + YES + NO
"""The task's characters followed by the verification marker and the two answer tokens."""
MARK_ID, YES_ID, NO_ID = (VERIFY_VOCAB.index(c) for c in (VERIFY_MARK, YES, NO))
LOSSES = ("answer_tokens", "full_vocab")
"""The supports of J_verify's cross-entropy (:attr:`VerifierConfig.loss`)."""


@dataclass(frozen=True)
class VerifierConfig:
    """RL^V: train the policy as a verifier of its own rollouts beside the policy-gradient loss."""

    enabled: bool = False
    """Add the verification loss (the policy's vocabulary gains the marker and the Yes/No tokens)."""
    coef: float = 1.0
    """lambda in J = J_RL + lambda J_verify (the paper's 1)."""
    class_balance: bool = False
    """Weight the two labels equally in J_verify (each rollout by N / (2 N_label), over the step's batch); a
    batch with one label only keeps equal weights."""
    loss: str = "answer_tokens"
    """'answer_tokens': the next-token cross-entropy over the two answer tokens (the label's share of Y and N,
    -log sigmoid(+-(logit_Y - logit_N))); 'full_vocab': over the whole vocabulary. The new tokens start far
    below the task's characters at the marker, so under 'full_vocab' the first updates mostly teach the answer
    format (push the task's characters down at the marker) through the shared weights; 'answer_tokens' asks
    only which of the two it is."""

    def __post_init__(self):
        check_bool(self.enabled, "enabled")
        check_number(self.coef, "coef", minimum=0.0, min_open=True)
        check_bool(self.class_balance, "class_balance")
        check_choice(self.loss, "loss", LOSSES)
        if not self.enabled and (self.coef, self.class_balance, self.loss) != (1.0, False, LOSSES[0]):
            raise ValueError("verifier settings are read only with verifier.enabled = true (--verifier)")

    @property
    def vocab_size(self) -> int:
        """Tokens of the policy: the task's, plus the verification tokens when enabled."""
        return len(VERIFY_VOCAB) if self.enabled else len(VOCAB)


def make_policy(policy: PolicyConfig, verifier: VerifierConfig, warm_weights: dict[str, torch.Tensor], *,
                seed: int) -> Policy:
    """The policy a run starts from: the warm-up weights (task vocabulary), extended when the verifier is on."""
    model = Policy(policy, vocab_size=verifier.vocab_size)
    if verifier.enabled:
        warm_weights = extend_vocab(warm_weights, len(VERIFY_VOCAB) - len(VOCAB), seed=seed)
    model.load_state_dict(warm_weights)
    return model


def extend_vocab(weights: dict[str, torch.Tensor], n_new: int, *, seed: int) -> dict[str, torch.Tensor]:
    """Warm-up weights with ``n_new`` more tokens: embedding rows drawn as ``nn.Embedding`` draws them
    (N(0, 1)), head rows at zero (so the new tokens start with logit 0), from ``seed``.

    Examples
    --------
    >>> w = Policy(PolicyConfig(d_embed=4, d_hidden=8)).state_dict()
    >>> big = extend_vocab(w, 3, seed=0)
    >>> tuple(big["embed.weight"].shape), tuple(big["head.weight"].shape), bool((big["head.bias"][-3:] == 0).all())
    ((18, 4), (18, 8), True)
    """
    generator = torch.Generator().manual_seed(seed)
    out = dict(weights)
    embed = weights["embed.weight"]  # (V, E)
    out["embed.weight"] = torch.cat([embed, torch.randn(n_new, embed.shape[1], generator=generator)])  # (V + n, E)
    head_w, head_b = weights["head.weight"], weights["head.bias"]  # (V, H), (V,)
    out["head.weight"] = torch.cat([head_w, head_w.new_zeros(n_new, head_w.shape[1])])  # (V + n, H)
    out["head.bias"] = torch.cat([head_b, head_b.new_zeros(n_new)])  # (V + n,)
    return out


def verify_inputs(prompts: torch.Tensor, responses: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The verification input of each rollout and the position of its marker.

    Parameters
    ----------
    prompts : LongTensor of shape (N, T_prompt)
    responses : LongTensor of shape (N, T)
    mask : BoolTensor of shape (N, T)
        The generated tokens (a prefix of each row, end token included).

    Returns
    -------
    tokens : LongTensor of shape (N, T_prompt + T + 1)
        Prompt, generated tokens, the marker, then padding.
    position : LongTensor of shape (N,)
        Index of the marker: the logits there predict the answer token.
    """
    n, t_prompt = prompts.shape
    generated = torch.where(mask, responses, torch.full_like(responses, PAD_ID))  # (N, T)
    tokens = torch.cat([prompts, generated, prompts.new_full((n, 1), PAD_ID)], dim=1)  # (N, T_prompt + T + 1)
    position = t_prompt + mask.sum(1)  # (N,)
    tokens[torch.arange(n), position] = MARK_ID
    return tokens, position


def answer_logits(policy: Policy, tokens: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Next-token logits over the whole vocabulary at each marker, shape ``(N, vocab_size)``."""
    logits, _ = policy(tokens)  # (N, L, vocab_size)
    return logits[torch.arange(tokens.shape[0]), position]  # (N, vocab_size)


def p_yes(logits: torch.Tensor) -> torch.Tensor:
    """P(Yes) renormalised over the two answer tokens, ``sigmoid(logit_Y - logit_N)``, shape ``(N,)``."""
    return torch.sigmoid(logits[:, YES_ID] - logits[:, NO_ID])  # (N,)


def verify_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, over: str = "answer_tokens") -> torch.Tensor:
    """Weighted mean next-token cross-entropy of the answer token (``Y`` for a correct rollout, else ``N``),
    over the two answer tokens or the whole vocabulary (``over``, see :attr:`VerifierConfig.loss`).

    logits : (N, vocab_size); labels : BoolTensor (N,); weight : (N,).
    """
    if over == "answer_tokens":
        margin = logits[:, YES_ID] - logits[:, NO_ID]  # (N,)
        nll = -torch.nn.functional.logsigmoid(torch.where(labels, margin, -margin))  # (N,)
    else:
        nll = torch.nn.functional.cross_entropy(logits, torch.where(labels, YES_ID, NO_ID), reduction="none")  # (N,)
    return (weight * nll).sum() / weight.sum()


@dataclass(frozen=True)
class VerifierBatch:
    """One step's verification data, aligned with the rows of the policy update's batch.

    Called with a minibatch's row indices, it returns ``coef * J_verify`` on those rows (to add to the
    policy-gradient loss) and its metrics, each scored before that minibatch's optimizer step: the
    unweighted ``verifier/loss``, ``verifier/accuracy`` (P(Yes) > 0.5 agrees with the reward) and
    ``verifier/p_yes_mean``.
    """

    policy: Policy
    tokens: torch.Tensor
    """(N, L) verification inputs."""
    position: torch.Tensor
    """(N,) marker positions."""
    labels: torch.Tensor
    """(N,) BoolTensor: the rollout's reward is 1."""
    weight: torch.Tensor
    """(N,) class weights."""
    coef: float
    over: str
    """The loss's support (``VerifierConfig.loss``)."""

    @classmethod
    def build(cls, policy: Policy, config: VerifierConfig, prompts: torch.Tensor, responses: torch.Tensor,
              mask: torch.Tensor, rewards: np.ndarray) -> "VerifierBatch":
        """From the rows the policy update trains on (prompts ``(N, T_prompt)``, responses and mask ``(N, T)``,
        0/1 rewards ``(N,)``)."""
        tokens, position = verify_inputs(prompts, responses, mask)
        labels = np.asarray(rewards) > 0.5
        weight = torch.as_tensor(class_weights(labels, config.class_balance), dtype=torch.float32)
        return cls(policy, tokens, position, torch.from_numpy(labels), weight, config.coef, config.loss)

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = answer_logits(self.policy, self.tokens[idx], self.position[idx])  # (b, vocab_size)
        labels = self.labels[idx]  # (b,)
        loss = verify_loss(logits, labels, self.weight[idx], self.over)
        with torch.no_grad():
            score = p_yes(logits)  # (b,)
            plain = verify_loss(logits, labels, torch.ones_like(score), self.over)
            stats = {"verifier/loss": plain.item(), "verifier/accuracy": ((score > 0.5) == labels).float().mean().item(),
                     "verifier/p_yes_mean": score.mean().item()}
        return self.coef * loss, stats


@torch.no_grad()
def score_rollouts(policy: Policy, prompts: torch.Tensor, responses: torch.Tensor, mask: torch.Tensor, *,
                   chunk: int = 4096) -> np.ndarray:
    """The verifier's P(Yes) of every rollout, shape ``(N,)``, in chunks of ``chunk`` rows.

    Raises
    ------
    ValueError
        If the policy has no verification tokens (it was trained without the verifier).
    """
    if policy.head.out_features < len(VERIFY_VOCAB):
        raise ValueError("this policy has no verification tokens (trained without verifier.enabled); "
                         "it cannot score its answers")
    tokens, position = verify_inputs(prompts, responses, mask)
    out = [p_yes(answer_logits(policy, tokens[i : i + chunk], position[i : i + chunk])) for i in range(0, len(tokens), chunk)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)
