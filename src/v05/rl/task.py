"""A verifiable arithmetic task with graded difficulty, a character vocabulary and an exact-match reward.

A problem is a chain of single digits joined by ``+`` and ``-``, and the target is its decimal value
(``"7-9+4="`` -> ``"2"``). The difficulty level is the number of terms (2 to 8): each extra term is one more
step the policy must carry in its state, so a small GRU warmed up briefly has pass rates spread between
0 and 1 across prompts and levels. (Multi-digit column arithmetic was tried first: a CPU-sized GRU needs
far more than a minute of warm-up before it solves any of it.) Prompts are left-padded to a fixed width,
so a prompt's tokens never depend on the batch it is in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD, EOS = "_", "$"
VOCAB = PAD + EOS + "0123456789+-="
"""Character vocabulary; index 0 is padding, index 1 ends a response."""
PAD_ID, EOS_ID = 0, 1
MIN_TERMS, MAX_TERMS = 2, 8
"""Difficulty levels: the number of terms in a problem."""
PROMPT_LEN = 2 * MAX_TERMS
"""Width of a padded prompt (8 digits, 7 operators and ``=``)."""
MAX_RESPONSE_LEN = 5
"""Longest response in tokens including the end token (``"-63"`` has 3 characters; 1 spare)."""

_CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: its prompt text, exact answer and difficulty level (number of terms)."""

    prompt: str
    answer: str
    level: int


def make_problems(n: int, rng: np.random.Generator, *, exclude=frozenset(), distinct: bool = True,
                  max_terms: int = MAX_TERMS) -> list[Problem]:
    """Draw ``n`` problems with a uniformly random number of terms, none whose prompt is in ``exclude``.

    Parameters
    ----------
    n : int
        Number of problems.
    rng : numpy.random.Generator
        Source of randomness (the result is a pure function of its state).
    exclude : set of str
        Prompts that must not be drawn (e.g. the held-out set when drawing the training pool).
    distinct : bool
        Whether every prompt drawn must differ from the others (False for warm-up data).
    max_terms : int
        Longest chain drawn (terms from :data:`MIN_TERMS` to this, uniformly; the default draws every level,
        and the same numbers as before this option existed).
    """
    if not MIN_TERMS <= max_terms <= MAX_TERMS:
        raise ValueError(f"max_terms == {max_terms!r}, must be in [{MIN_TERMS}, {MAX_TERMS}]")
    seen, out = set(exclude), []
    while len(out) < n:
        k = int(rng.integers(MIN_TERMS, max_terms + 1))
        digits = rng.integers(0, 10, size=k)
        ops = rng.choice(["+", "-"], size=k - 1)
        prompt, value = str(digits[0]), int(digits[0])
        for op, d in zip(ops, digits[1:]):
            prompt += f"{op}{d}"
            value += int(d) if op == "+" else -int(d)
        prompt += "="
        if prompt not in seen:
            if distinct:
                seen.add(prompt)
            out.append(Problem(prompt, str(value), k))
    return out


def encode_prompts(prompts: list[str]) -> np.ndarray:
    """Left-pad prompts to :data:`PROMPT_LEN` and map characters to ids, shape ``(n, PROMPT_LEN)``."""
    out = np.full((len(prompts), PROMPT_LEN), PAD_ID, dtype=np.int64)
    for i, p in enumerate(prompts):
        if len(p) > PROMPT_LEN:
            raise ValueError(f"prompt {p!r} is longer than PROMPT_LEN = {PROMPT_LEN}")
        out[i, PROMPT_LEN - len(p) :] = [_CHAR_TO_ID[c] for c in p]
    return out


def encode_answers(answers: list[str]) -> np.ndarray:
    """Answers followed by the end token, right-padded, shape ``(n, MAX_RESPONSE_LEN)`` (supervised warm-up)."""
    out = np.full((len(answers), MAX_RESPONSE_LEN), PAD_ID, dtype=np.int64)
    for i, a in enumerate(answers):
        ids = [_CHAR_TO_ID[c] for c in a] + [EOS_ID]
        out[i, : len(ids)] = ids
    return out


def decode_responses(tokens: np.ndarray) -> list[str]:
    """Turn sampled token rows ``(n, T)`` into strings, cut at the first end token.

    A response that never emits the end token within ``T`` tokens decodes with a trailing ``"?"``, so it can
    never match an answer.

    Examples
    --------
    >>> decode_responses(encode_answers(["-12", "7"]))
    ['-12', '7']
    """
    out = []
    for row in tokens:
        chars = []
        for t in row:
            if t == EOS_ID:
                break
            chars.append(VOCAB[t])
        else:
            chars.append("?")
        out.append("".join(chars))
    return out


def exact_match_reward(responses: list[str], answers: list[str]) -> np.ndarray:
    """Reward 1.0 where a response equals its answer exactly, else 0.0, shape ``(n,)``.

    Examples
    --------
    >>> exact_match_reward(["2", "02", "-3"], ["2", "2", "-3"]).tolist()
    [1.0, 0.0, 1.0]
    """
    if len(responses) != len(answers):
        raise ValueError(f"{len(responses)} responses but {len(answers)} answers")
    return np.array([float(r == a) for r, a in zip(responses, answers)])


@dataclass(frozen=True)
class ArithmeticTask:
    """The training pool (prompts recur over epochs) and a disjoint held-out evaluation set."""

    train: list[Problem]
    eval: list[Problem]

    @classmethod
    def build(cls, n_train: int, n_eval: int, seed: int) -> "ArithmeticTask":
        """Draw a held-out set, then a disjoint training pool, from ``numpy.random.default_rng(seed)``."""
        rng = np.random.default_rng(seed)
        held_out = make_problems(n_eval, rng)
        pool = make_problems(n_train, rng, exclude={p.prompt for p in held_out})
        return cls(train=pool, eval=held_out)
