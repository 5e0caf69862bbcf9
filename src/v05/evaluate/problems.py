"""The problems ``v05 eval`` samples: the built-in task's held-out set, or a math problems file.

A problems file is JSONL in the format of the shared math benchmarks (``docs/data.md``): one problem per line,
its text in ``problem`` (or ``question``) and its reference answer where that benchmark keeps it (a file
named ``<benchmark>_test.jsonl`` for a known benchmark: ``gsm8k``'s ``#### N``, ``minerva_math``'s last
``\\boxed{}``, ``olympiadbench``'s ``final_answer``...; any other file: ``answer``). Every row is read and
checked before anything is sampled; a bad one is named by file, line and field.
"""

from __future__ import annotations

import json
from pathlib import Path

from v05.rl.config import TaskConfig
from v05.tasks.math_reward import BENCHMARKS, MathProblem, problem_id, reference_answer
from v05.rl.task import ArithmeticTask

BUILTIN = "builtin"
"""``--problems`` value naming the built-in task's held-out set."""


def builtin_problems(task: TaskConfig = TaskConfig(), limit: int | None = None) -> list[MathProblem]:
    """The held-out set of the built-in arithmetic task (``"7-9+4="``, answer ``"2"``), ids ``builtin/<i>``."""
    held_out = ArithmeticTask.build(task.n_train, task.n_eval, task.seed).eval[:limit]
    return [MathProblem(f"{BUILTIN}/{i}", p.prompt, p.answer) for i, p in enumerate(held_out)]


def benchmark_name(path: Path) -> str | None:
    """The shared benchmark a file name stands for (``gsm8k_test.jsonl`` -> ``gsm8k``), else None."""
    name = path.name.removesuffix("_test.jsonl")
    return name if path.name.endswith("_test.jsonl") and name in BENCHMARKS else None


def load_problems_file(path, limit: int | None = None) -> list[MathProblem]:
    """Every problem of a JSONL problems file (the first ``limit`` if given), checked row by row.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        A line that is not a JSON object, a row without problem text or reference answer (naming the file,
        the line and the field), or a file without problems.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"problems file {path} not found (expected a JSONL file like "
                                "../shared/data/math_benchmarks/gsm8k_test.jsonl, or 'builtin')")
    name = benchmark_name(path) or "file"
    out = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if limit is not None and len(out) >= limit:
                break
            if line.strip():
                out.append(_problem(path, name, line_no, line))
    if not out:
        raise ValueError(f"problems file {path} holds no problems")
    return out


def _problem(path: Path, name: str, line_no: int, line: str) -> MathProblem:
    where = f"problems file {path}, line {line_no}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    text = row.get("problem") or row.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: no problem text (a non-empty 'problem' or 'question' field)")
    if name == "file" and (row.get("answer") is None or isinstance(row["answer"], (bool, dict, list))):
        raise ValueError(f"{where}: no reference answer (an 'answer' field holding a number or text)")
    try:
        answer = reference_answer(name, row)
    except KeyError as e:
        raise ValueError(f"{where}: no reference answer (field {e.args[0]!r})") from None
    except (AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: unreadable reference answer ({e})") from None
    if answer is None or not str(answer).strip():
        raise ValueError(f"{where}: empty reference answer")
    return MathProblem(f"{path.stem}/{problem_id(row, line_no - 1)}", text, str(answer))
