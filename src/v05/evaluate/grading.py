"""Grading sampled solutions: whether each is correct, and which final answer it gives (the clusters voting
counts).

Two graders, one per kind of answer:

- **exact** (the built-in task): a response is correct when it equals the reference exactly (the engine's
  reward); its answer is the response itself. A response that never ended (no end token) or is empty gives
  no answer.
- **math** (problem files, chat models): ``math-verify`` reads each response's final answer (its last
  ``\\boxed{}``, else the trailing expression) and checks it against the reference (``v05.tasks.math_reward``).
  Correct answers form one cluster (each equals the reference); wrong ones are clustered by
  ``math_verify.verify`` against the first member of each cluster, so ``0.5`` and ``\\frac{1}{2}`` vote
  together. A response with no parseable answer gives none. Correctness therefore never differs within a
  cluster, as voting needs (``v05.evaluate.voting.Pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v05.evaluate.voting import answer_ids
from v05.tasks.math_reward import parse_reference, parse_response

GRADERS = ("exact", "math")


@dataclass(frozen=True)
class Graded:
    """Correctness and answer cluster of every sample, shape (P problems, N samples) each."""

    correct: np.ndarray
    """(P, N) bool."""
    answer: np.ndarray
    """(P, N) int cluster id within the problem, or ``v05.evaluate.voting.NO_ANSWER``."""


def grade(responses: list[list[str]], answers: list[str], grader: str) -> Graded:
    """Grade ``responses[p][j]`` against ``answers[p]`` with ``grader`` (``"exact"`` or ``"math"``)."""
    if len(responses) != len(answers):
        raise ValueError(f"{len(responses)} problems of responses but {len(answers)} reference answers")
    if grader == "exact":
        rows = [_exact(row, ref) for row, ref in zip(responses, answers)]
    elif grader == "math":
        rows = [_math(row, ref) for row, ref in zip(responses, answers)]
    else:
        raise ValueError(f"grader == {grader!r}, must be one of {list(GRADERS)}")
    correct = np.array([ok for ok, _ in rows], dtype=bool).reshape(len(rows), -1)
    return Graded(correct, answer_ids([keys for _, keys in rows]))


def _exact(responses: list[str], reference: str) -> tuple[list[bool], list]:
    """Exact match; the response is its own answer key (None if it never ended: ``decode_responses`` marks
    that with a trailing ``?``, or if it is empty)."""
    keys = [None if not r or r.endswith("?") else r for r in responses]
    return [k is not None and k == reference for k in keys], keys


def _math(responses: list[str], reference: str) -> tuple[list[bool], list]:
    """math-verify correctness and answer clusters (see the module docstring)."""
    from math_verify import verify

    gold = parse_reference(reference)
    correct, keys, wrong_reps = [], [], []
    for response in responses:
        guess = parse_response(response)
        if not guess:
            correct.append(False)
            keys.append(None)
        elif gold and verify(gold, guess):
            correct.append(True)
            keys.append("reference")
        else:
            correct.append(False)
            keys.append(_cluster(guess, wrong_reps))
    return correct, keys


def _cluster(guess: list, reps: list) -> int:
    """Index of the first representative ``guess`` verifies equal to (appending it as a new one if none)."""
    from math_verify import verify

    for i, rep in enumerate(reps):
        if guess[-1] == rep[-1] or verify(rep, guess):
            return i
    reps.append(guess)
    return len(reps) - 1
