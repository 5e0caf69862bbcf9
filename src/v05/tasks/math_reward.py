"""Real math prompts with reference answers, and a 0/1 reward checked by ``math-verify`` (for GPU recipes).

The loader reads the shared benchmark files (``../shared/data/math_benchmarks/<name>_test.jsonl``; their
fields and provenance: ``docs/data.md``, "Shared data sets") into :class:`MathProblem` rows; :func:`math_reward`
scores model responses against the reference answers the way the paper's evaluation does (the last
``\\boxed{}`` or final expression of the response, compared symbolically).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCHMARKS = ("aime24", "aime25", "amc23", "gsm8k", "math500", "minerva_math", "olympiadbench")
"""Benchmark names accepted by :func:`load_math_benchmark` (file ``<name>_test.jsonl``)."""


@dataclass(frozen=True)
class MathProblem:
    """One benchmark problem: a stable id, the problem text and the reference answer (LaTeX or plain)."""

    prompt_id: str
    prompt: str
    answer: str


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None if there is none.

    Examples
    --------
    >>> last_boxed(r"first \\boxed{1}, then \\boxed{\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    """
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def reference_answer(name: str, row: dict) -> str:
    """The reference answer of one row of benchmark ``name`` (each file keeps it in its own field).

    Raises
    ------
    KeyError
        If the row lacks the field; ``ValueError`` if a minerva_math solution has no ``\\boxed{}``.
    """
    if name == "gsm8k":
        return row["answer"].split("####")[-1].strip().replace(",", "")
    if name == "minerva_math":
        boxed = last_boxed(row["solution"])
        if boxed is None:
            raise ValueError(f"minerva_math row {row.get('idx')}: solution has no \\boxed{{}} answer")
        return boxed
    if name == "olympiadbench":
        answers = row["final_answer"]
        answers = json.loads(answers.replace("'", '"')) if isinstance(answers, str) else answers
        return ", ".join(str(a).strip("$ ") for a in answers)
    return str(row["answer"])


def problem_id(row: dict, default) -> str:
    """A benchmark row's own id (``id``, ``unique_id`` or ``idx``, whichever it has), else ``default``."""
    return str(row.get("id", row.get("unique_id", row.get("idx", default))))


def load_math_benchmark(name: str, root, limit: int | None = None) -> list[MathProblem]:
    """Read ``<root>/<name>_test.jsonl`` into problems with reference answers.

    Parameters
    ----------
    name : str
        One of :data:`BENCHMARKS`.
    root : path-like
        The ``math_benchmarks`` folder.
    limit : int, optional
        Read only the first ``limit`` rows.

    Raises
    ------
    ValueError
        If ``name`` is unknown or a row lacks its answer.
    FileNotFoundError
        If the file is missing.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    path = Path(root) / f"{name}_test.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (expected the shared math_benchmarks folder)")
    out = []
    with path.open() as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            text = row.get("problem") or row.get("question")
            out.append(MathProblem(prompt_id=f"{name}/{problem_id(row, i)}", prompt=text,
                                   answer=reference_answer(name, row)))
    return out


def _as_math(text: str) -> str:
    text = text.strip()
    return text if "$" in text or "\\boxed" in text else f"${text}$"


def parse_reference(answer: str) -> list:
    """A reference answer parsed by ``math_verify.parse`` (degree marks dropped); empty if unparseable."""
    from math_verify import parse

    return parse(_as_math(re.sub(r"\^\\circ|\^\{\\circ\}", "", answer)))


def parse_response(response: str) -> list:
    """A response's final answer parsed by ``math_verify.parse``: its last ``\\boxed{}`` if any, else whatever
    ``parse`` extracts from the whole response (a trailing number or expression); empty if none."""
    from math_verify import parse

    boxed = last_boxed(response)
    return parse(_as_math(boxed) if boxed is not None else response)


def math_reward(responses: list[str], answers: list[str]) -> np.ndarray:
    """Reward 1.0 where ``math-verify`` finds a response's final answer equal to the reference, else 0.0.

    The response's answer is read by :func:`parse_response`, the reference by :func:`parse_reference`.
    Unparseable responses score 0.

    Returns
    -------
    ndarray of shape (n,)
    """
    from math_verify import verify

    if len(responses) != len(answers):
        raise ValueError(f"{len(responses)} responses but {len(answers)} answers")
    out = np.zeros(len(responses))
    for i, (response, answer) in enumerate(zip(responses, answers)):
        gold, guess = parse_reference(answer), parse_response(response)
        out[i] = float(bool(gold) and bool(guess) and verify(gold, guess))
    return out
