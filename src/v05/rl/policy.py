"""A tiny character-level GRU policy: batched sampling, per-token log-probabilities and a supervised warm-up.

The GRU reads the left-padded prompt, then emits the response one character at a time. Everything here
works on id tensors; :mod:`v05.rl.task` turns text into ids and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from v05._validation import check_positive_int
from v05.rl.task import EOS_ID, MAX_RESPONSE_LEN, VOCAB


@dataclass(frozen=True)
class PolicyConfig:
    """Sizes of the GRU policy (the defaults are the engine's: about 0.1 M parameters)."""

    d_embed: int = 32
    """Width of the character embedding."""
    d_hidden: int = 128
    """Width of the GRU state."""
    n_layers: int = 1
    """Stacked GRU layers."""

    def __post_init__(self):
        for name in ("d_embed", "d_hidden", "n_layers"):
            check_positive_int(getattr(self, name), name)


class Policy(nn.Module):
    """Character GRU language model over :data:`v05.rl.task.VOCAB`, optionally with extra tokens after it.

    Parameters
    ----------
    config : PolicyConfig
    vocab_size : int
        Tokens the embedding and the head cover: ``len(VOCAB)`` (the task's characters), or more when the
        policy also reads and predicts other tokens (RL^V's verification tokens, :mod:`v05.rl.verifier`).
        Responses are always drawn from the task's characters only: the sampling and the policy-gradient
        log-probabilities use the head's first ``len(VOCAB)`` logits.
    """

    def __init__(self, config: PolicyConfig = PolicyConfig(), vocab_size: int = len(VOCAB)):
        super().__init__()
        check_positive_int(vocab_size, "vocab_size", minimum=len(VOCAB))
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.d_embed)
        self.gru = nn.GRU(config.d_embed, config.d_hidden, num_layers=config.n_layers, batch_first=True)
        self.head = nn.Linear(config.d_hidden, vocab_size)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None):
        """Logits for the next token at every position, and the final GRU state."""
        h, state = self.gru(self.embed(tokens), state)  # (B, T, H), (L, B, H)
        return self.head(h), state  # (B, T, V)

    def weights_version(self) -> tuple[int, ...]:
        """Changes whenever any weight changes: an optimizer step, ``load_state_dict`` or any in-place edit.

        Built from each parameter's storage address and autograd version counter (bumped by every in-place
        write), so caches of what the policy computed can be keyed to the weights they came from.
        """
        return tuple(v for p in self.parameters() for v in (p.data_ptr(), p._version))

    def response_logits(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits for each response token over the task's characters, shape ``(B, T_resp, V)``."""
        tokens = torch.cat([prompts, responses[:, :-1]], dim=1)  # (B, T_prompt + T_resp - 1)
        logits, _ = self(tokens)  # (B, T_prompt + T_resp - 1, vocab_size)
        return logits[:, prompts.shape[1] - 1 :, : len(VOCAB)]  # (B, T_resp, V)

    @torch.no_grad()
    def read_prompts(self, prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the GRU over prompts ``(B, T_prompt)``: next-token logits ``(B, V)`` and state ``(L, B, H)``.

        Sampling starts from this prefix; computing it once per prompt and step and reusing it across
        OSLA's rounds is the CPU analogue of an inference engine's prefix cache.
        """
        logits, state = self(prompts)  # (B, T_prompt, vocab_size), (L, B, H)
        return logits[:, -1, : len(VOCAB)], state  # (B, V), (L, B, H)

    @torch.no_grad()
    def sample(self, prompts: torch.Tensor, generator: torch.Generator, temperature: float = 1.0):
        """Sample one response per prompt row (see :meth:`sample_from_prefix`)."""
        return self.sample_from_prefix(*self.read_prompts(prompts), generator, temperature)

    @torch.no_grad()
    def sample_from_prefix(self, step_logits: torch.Tensor, state: torch.Tensor, generator: torch.Generator,
                           temperature: float = 1.0):
        """Sample one response per row, starting from :meth:`read_prompts`'s output.

        Parameters
        ----------
        step_logits : Tensor of shape (B, V)
        state : Tensor of shape (L, B, H)
        generator : torch.Generator
            The only source of randomness, so a run can be replayed exactly.
        temperature : float

        Returns
        -------
        responses : LongTensor of shape (B, MAX_RESPONSE_LEN)
            Tokens; after the end token the row is padded with end tokens.
        mask : BoolTensor of shape (B, MAX_RESPONSE_LEN)
            True up to and including the first end token (the tokens the policy chose).
        """
        tokens, mask = [], []
        alive = torch.ones(step_logits.shape[0], dtype=torch.bool)  # (B,)
        for _ in range(MAX_RESPONSE_LEN):
            probs = torch.softmax(step_logits / temperature, dim=-1)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            nxt = torch.where(alive, nxt, torch.full_like(nxt, EOS_ID))  # (B,)
            tokens.append(nxt)
            mask.append(alive.clone())
            alive &= nxt != EOS_ID
            if not alive.any():
                break
            out, state = self(nxt[:, None], state)  # (B, 1, vocab_size)
            step_logits = out[:, 0, : len(VOCAB)]  # (B, V)
        responses = torch.stack(tokens, dim=1)  # (B, t)
        mask = torch.stack(mask, dim=1)  # (B, t)
        pad = MAX_RESPONSE_LEN - responses.shape[1]
        responses = nn.functional.pad(responses, (0, pad), value=EOS_ID)  # (B, MAX_RESPONSE_LEN)
        mask = nn.functional.pad(mask, (0, pad), value=False)  # (B, MAX_RESPONSE_LEN)
        return responses, mask


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of each chosen token: ``(B, T, V)``, ``(B, T)`` -> ``(B, T)``."""
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None]).squeeze(-1)  # (B, T)


def supervised_warmup(
    policy: Policy,
    prompts: torch.Tensor,
    answers: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> list[float]:
    """Teach the policy the answer format (and some arithmetic) by next-token cross-entropy.

    Parameters
    ----------
    prompts : LongTensor of shape (N, T_prompt)
    answers : LongTensor of shape (N, MAX_RESPONSE_LEN)
        Answer tokens, end token, then padding (ignored by the loss).
    steps, batch_size, lr
        Optimisation length, minibatch size and Adam learning rate.
    generator : torch.Generator
        Draws the minibatches.

    Returns
    -------
    list of float
        The loss at every step.
    """
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    target_mask = torch.cumsum((answers == EOS_ID).long(), dim=1) - (answers == EOS_ID).long() == 0  # (N, T_resp)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, prompts.shape[0], (batch_size,), generator=generator)  # (b,)
        logits = policy.response_logits(prompts[idx], answers[idx])  # (b, T_resp, V)
        nll = -token_logprobs(logits, answers[idx])  # (b, T_resp)
        loss = (nll * target_mask[idx]).sum() / target_mask[idx].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
