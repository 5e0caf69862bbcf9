"""A verifiable arithmetic task with graded difficulty, a character vocabulary and an exact-match reward.

Problems are ``"<a><op><b>="`` with the decimal answer as the target (``"37+5="`` -> ``"42"``). Difficulty
comes from the operator and the number of digits (levels 1-7, see :data:`LEVELS`), so a small policy
warmed up briefly has pass rates spread between 0 and 1 across prompts. Prompts are left-padded to a
fixed width, so a prompt's tokens never depend on the batch it is in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD, EOS = "_", "$"
VOCAB = PAD + EOS + "0123456789+-*="
"""Character vocabulary; index 0 is padding, index 1 ends a response."""
PAD_ID, EOS_ID = 0, 1
PROMPT_LEN = 8
"""Width of a padded prompt (the longest, ``"999-999="``, has 8 characters)."""
MAX_RESPONSE_LEN = 7
"""Longest response in tokens including the end token (``"-9999"`` is 5 characters; 2 spare)."""

LEVELS: dict[int, tuple[str, int, int]] = {
    1: ("+", 1, 1),
    2: ("+", 2, 1),
    3: ("+", 2, 2),
    4: ("-", 2, 2),
    5: ("*", 2, 1),
    6: ("+", 3, 3),
    7: ("-", 3, 3),
}
"""Difficulty level -> (operator, digits of a, digits of b)."""

_CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: its prompt text, exact answer and difficulty level."""

    prompt: str
    answer: str
    level: int


def _solve(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def make_problems(n: int, rng: np.random.Generator, *, levels=tuple(LEVELS), exclude=frozenset()) -> list[Problem]:
    """Draw ``n`` distinct problems, levels uniformly at random, none whose prompt is in ``exclude``.

    Parameters
    ----------
    n : int
        Number of problems.
    rng : numpy.random.Generator
        Source of randomness (the result is a pure function of its state).
    levels : sequence of int
        Difficulty levels to draw from (keys of :data:`LEVELS`).
    exclude : set of str
        Prompts that must not be drawn (e.g. the held-out set when drawing the training pool).

    Raises
    ------
    ValueError
        If a level is unknown or the levels cannot supply ``n`` distinct new prompts.
    """
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise ValueError(f"levels {unknown} unknown; known: {sorted(LEVELS)}")
    capacity = sum(9 * 10 ** (LEVELS[lv][1] - 1) * 9 * 10 ** (LEVELS[lv][2] - 1) for lv in set(levels))
    if n > capacity // 2:
        raise ValueError(f"n = {n} problems asked from levels {sorted(set(levels))}, which hold only {capacity}")
    seen, out = set(exclude), []
    while len(out) < n:
        level = int(rng.choice(levels))
        op, da, db = LEVELS[level]
        a = int(rng.integers(10 ** (da - 1), 10**da))
        b = int(rng.integers(10 ** (db - 1), 10**db))
        prompt = f"{a}{op}{b}="
        if prompt not in seen:
            seen.add(prompt)
            out.append(Problem(prompt, str(_solve(a, op, b)), level))
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
    """Reward 1.0 where a response equals its answer exactly, else 0.0, shape ``(n,)``."""
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
