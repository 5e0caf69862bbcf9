"""RL^V's verification prompt for chat language models (transformers): built from (problem, solution) with the
tokenizer's chat template, answered by the next token, ``Yes`` or ``No``.

The same prompt serves training (``V05Config(verifier_coef=...)`` in the TRL trainer: the next-token loss of
the label token) and test-time scoring (``v05 eval``: the verifier's P(Yes) ranks the samples). As in the
CPU engine (:mod:`v05.rl.verifier`), the score is P(Yes) renormalised over the two answer tokens,
``sigmoid(logit_Yes - logit_No)``. Framework-free apart from torch and a tokenizer.
"""

from __future__ import annotations

import numpy as np
import torch

VERIFY_PROMPT = "Is this solution correct? Answer Yes or No."
"""The verification question (the CPU engine's marker token stands for it; chat models read it written out)."""
TEMPLATE = "{problem}\n\nSolution:\n{solution}\n\n" + VERIFY_PROMPT
"""The user turn of the verification prompt (the paper's: problem, solution, question)."""
PLAIN_SUFFIX = "\nAnswer:"
"""Ends the prompt of a tokenizer without a chat template (the answer then starts with a space)."""


def verification_prompt(tokenizer, problem: str, solution: str) -> str:
    """The text the model reads before its verdict's first distinguishing token.

    With a chat template: one user turn (:data:`TEMPLATE`) and the assistant's generation prompt. Without:
    the same text followed by :data:`PLAIN_SUFFIX`. Either way followed by whatever ``Yes`` and ``No`` share
    as first tokens (:func:`verdict_tokens`; nothing for a BPE tokenizer, the space for a character one).
    """
    text = TEMPLATE.format(problem=problem.strip(), solution=solution.strip())
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    else:
        text += PLAIN_SUFFIX
    return text + verdict_tokens(tokenizer)[0]


def verdict_tokens(tokenizer) -> tuple[str, int, int]:
    """(lead, yes, no): the text ``Yes`` and ``No`` share as first tokens, then the id of each one's first token
    after it. The verdict is written with no leading space after a chat template's generation prompt, with one
    after :data:`PLAIN_SUFFIX`.

    Raises
    ------
    ValueError
        If the tokenizer cannot write ``Yes`` or ``No`` (unknown characters), or cannot tell them apart.
    """
    space = "" if getattr(tokenizer, "chat_template", None) else " "
    yes = tokenizer.encode(space + "Yes", add_special_tokens=False)
    no = tokenizer.encode(space + "No", add_special_tokens=False)
    for word, ids in (("Yes", yes), ("No", no)):
        if "".join(tokenizer.decode(ids).split()) != word:  # whitespace aside: decoders differ in spacing
            raise ValueError(f"the tokenizer cannot write {word!r} (it encodes it as {ids}, which decodes to "
                             f"{tokenizer.decode(ids)!r}), so it cannot give a verdict")
    shared = 0
    while shared < min(len(yes), len(no)) and yes[shared] == no[shared]:
        shared += 1
    if shared == min(len(yes), len(no)):
        raise ValueError(f"the tokenizer encodes 'Yes' as {yes} and 'No' as {no}: no token tells them apart, so "
                         "it cannot give a verdict")
    return tokenizer.decode(yes[:shared]), int(yes[shared]), int(no[shared])


def answer_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of the tokens of ``Yes`` and of ``No`` the verdict is read from (:func:`verdict_tokens`)."""
    return verdict_tokens(tokenizer)[1:]


def p_yes(logits: torch.Tensor, yes: int, no: int) -> torch.Tensor:
    """P(Yes) renormalised over the two answer tokens from next-token logits ``(N, vocab)``, shape ``(N,)``."""
    return torch.sigmoid(logits[:, yes].float() - logits[:, no].float())  # (N,)


def verification_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, yes: int, no: int
                      ) -> torch.Tensor:
    """J_verify: the weighted mean next-token cross-entropy (over the whole vocabulary) of the label token,
    ``Yes`` for a correct solution, else ``No``.

    logits : (N, vocab); labels : BoolTensor (N,); weight : (N,).
    """
    target = torch.where(labels, yes, no)  # (N,)
    nll = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")  # (N,)
    return (weight * nll).sum() / weight.sum()


def encode_verification(tokenizer, problems: list[str], solutions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded token ids and attention mask of the verification prompts, shape (N, L) each, so that the
    last position of every row is its own (where the verdict is read)."""
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
    texts = [verification_prompt(tokenizer, p, s) for p, s in zip(problems, solutions)]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    return enc["input_ids"], enc["attention_mask"]


@torch.no_grad()
def score_solutions(model, tokenizer, problems: list[str], solutions: list[str], *, batch_size: int = 8,
                    progress=None) -> np.ndarray:
    """The model's P(Yes) for each (problem, solution) pair, shape ``(N,)``, in batches of ``batch_size``.

    ``progress(n_done)`` is called after each batch.
    """
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
    yes, no = answer_token_ids(tokenizer)
    out = []
    for i in range(0, len(problems), batch_size):
        ids, mask = encode_verification(tokenizer, problems[i : i + batch_size], solutions[i : i + batch_size])
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits[:, -1]  # (b, vocab)
        out.append(p_yes(logits, yes, no).cpu())
        if progress is not None:
            progress(min(i + batch_size, len(problems)))
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def class_weights(labels: np.ndarray, balance: bool) -> np.ndarray:
    """Per-rollout weight of J_verify, shape (N,): ones, or N / (2 N_label) when balancing (ones again when
    one label is absent: there is nothing to balance).

    Examples
    --------
    >>> class_weights(np.array([True, False, False, False]), True).tolist()
    [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
    """
    labels = np.asarray(labels, dtype=bool)
    n, n_yes = len(labels), int(labels.sum())
    if not balance or n_yes in (0, n):
        return np.ones(n)
    return np.where(labels, n / (2 * n_yes), n / (2 * (n - n_yes)))
