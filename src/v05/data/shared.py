"""Loaders that turn the shared real data sets (``../shared/data``, described in ``docs/data.md``) into
pass-rate tables. A malformed line names its file and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v05._validation import check_choice
from v05.data.files import TableError, csv_records, json_rows, read_json
from v05.data.table import PassRateTable, load_table

V0_DEMO_FILES = ("context.jsonl", "train.jsonl", "test.jsonl")
V0_DEMO_SAMPLES = 10
"""v0_demo scores are multiples of 0.2 on the +-1 scale: about 10 rollouts each (``docs/data.md``)."""
MMLUPRO_VIEWS = ("models", "halves")


def load_v0_demo(root) -> PassRateTable:
    """The V0 paper's released data: 6 policies x 576 DAPO-Math prompts.

    ``policy`` is ``"<model>@<step>"``, ``pass_rate = (score + 1) / 2`` (scores are means of +-1 rewards),
    ``split`` is the file's ``type`` (context / train_query / test_query), ``prompt`` the problem text.
    """
    root = Path(root)
    prompts_path = root / "prompt_dict.json"
    if not prompts_path.is_file():
        raise TableError(f"{root}: not a v0_demo folder (no prompt_dict.json)")
    texts = read_json(prompts_path)
    if not isinstance(texts, dict):
        raise TableError(f"{prompts_path}: expected a JSON object of prompt id -> text, got {type(texts).__name__}")
    cols: dict[str, list] = {k: [] for k in ("prompt_id", "policy", "pass_rate", "n_samples", "prompt", "split")}
    for name in V0_DEMO_FILES:
        path = root / name
        if not path.is_file():
            raise TableError(f"{root}: not a complete v0_demo folder (no {name})")
        for line_no, row in json_rows(path):
            key, score, policy, split = _v0_demo_row(row, path, line_no)
            if key not in texts:
                raise TableError(f"{path}, row {line_no}, column 'id': no prompt text for {key!r} in {prompts_path}")
            cols["prompt_id"].append(key)
            cols["policy"].append(policy)
            cols["pass_rate"].append(round((score + 1.0) / 2.0, 10))
            cols["n_samples"].append(V0_DEMO_SAMPLES)
            cols["prompt"].append(texts[key])
            cols["split"].append(split)
    return PassRateTable.from_columns(source=str(root), **cols)


def _v0_demo_row(row: dict, path: Path, line_no: int) -> tuple[str, float, str, str]:
    """(prompt id, score in [-1, 1], policy, split) of one v0_demo line."""
    try:
        key = f"{row['dataset']}_{row['id']}"
        policy = f"{row['model']}@{row['step']}"
        split, score = row["type"], row["score"]
    except KeyError as e:
        raise TableError(f"{path}, row {line_no}: missing field {e.args[0]!r}") from None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not -1.0 <= score <= 1.0:
        raise TableError(f"{path}, row {line_no}, column 'score': expected a number in [-1, 1], got {score!r}")
    return key, float(score), policy, split


def _mmlupro_prompts(root: Path) -> dict[str, str]:
    """Question text with lettered options, by question id."""
    path = root / "questions.jsonl"
    if not path.is_file():
        raise TableError(f"{root}: not a complete mmlupro_29models folder (no questions.jsonl)")
    prompts = {}
    for line_no, q in json_rows(path):
        try:
            qid, question, options = str(q["question_id"]), q["question"], q["options"]
        except KeyError as e:
            raise TableError(f"{path}, row {line_no}: missing field {e.args[0]!r}") from None
        if not isinstance(question, str) or not isinstance(options, list):
            raise TableError(f"{path}, row {line_no}: expected 'question' text and a list of 'options'")
        lettered = "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(options))
        prompts[qid] = f"{question}\n{lettered}"
    return prompts


CORRECT = {"": np.nan, "0": 0.0, "1": 1.0}
"""Cells of correct.csv: 1 right, 0 wrong (no answer included), blank when the model has no output."""


def load_mmlupro(root, view: str = "models", category: str | None = None) -> PassRateTable:
    """29 LLMs x 12,032 MMLU-Pro questions, one sample each.

    Parameters
    ----------
    view : {"models", "halves"}
        ``"models"``: one row per (question, model) with a 0/1 pass rate (``n_samples`` 1); blanks skipped.
        ``"halves"``: the models are ranked by accuracy and split into a weaker and a stronger half; each
        half is one policy (a rollout = a random model of the half) whose pass rate is the half's fraction
        correct, and whose ``prior`` is the *other* half's fraction correct on the same question: a real,
        informative but biased prior, like a stale checkpoint's outcomes.
    category : str, optional
        Keep only this MMLU-Pro category (e.g. ``"math"``).
    """
    root = Path(root)
    path = root / "correct.csv"
    if not path.is_file():
        raise TableError(f"{root}: not an mmlupro_29models folder (no correct.csv)")
    check_choice(view, "view", MMLUPRO_VIEWS)
    prompts = _mmlupro_prompts(root)
    records = csv_records(path)
    _, header = next(records, (1, []))
    models = header[2:]
    qids, grid = [], []
    for line_no, row in records:
        if len(row) != len(header):
            raise TableError(f"{path}, row {line_no}: {len(row)} fields, header has {len(header)}")
        if category is not None and row[1] != category:
            continue
        if row[0] not in prompts:
            raise TableError(f"{path}, row {line_no}: question_id {row[0]!r} is not in {root / 'questions.jsonl'}")
        qids.append(row[0])
        grid.append([_correct(v, path, line_no, model) for v, model in zip(row[2:], models)])
    if not qids:
        raise TableError(f"{path}: no questions (category={category!r})")
    correct = np.asarray(grid)  # (n_questions, n_models), nan = absent
    if view == "models":
        q_idx, m_idx = np.nonzero(~np.isnan(correct))
        return PassRateTable.from_columns(
            source=str(path),
            prompt_id=[f"mmlupro_{qids[q]}" for q in q_idx],
            policy=[models[m] for m in m_idx],
            pass_rate=correct[q_idx, m_idx],
            n_samples=np.ones(len(q_idx), dtype=int),
            prompt=[prompts[qids[q]] for q in q_idx],
        )
    return _halves_table(correct, qids, models, prompts, source=str(path))


def _correct(value: str, path: Path, line_no: int, model: str) -> float:
    try:
        return CORRECT[value.strip()]
    except KeyError:
        raise TableError(f"{path}, row {line_no}, column {model!r}: expected 1, 0 or blank, got {value!r}") from None


def _halves_table(correct: np.ndarray, qids: list, models: list, prompts: dict, source: str) -> PassRateTable:
    accuracy = np.nanmean(correct, axis=0)
    order = np.argsort(accuracy)
    halves = {"weaker": order[: len(order) // 2], "stronger": order[len(order) // 2 :]}
    observed = {name: (~np.isnan(correct[:, idx])).sum(axis=1) for name, idx in halves.items()}
    rate = {name: np.nansum(correct[:, idx], axis=1) / np.maximum(observed[name], 1) for name, idx in halves.items()}
    keep = (observed["weaker"] > 0) & (observed["stronger"] > 0)
    cols: dict[str, list] = {k: [] for k in ("prompt_id", "policy", "pass_rate", "n_samples", "prompt", "prior")}
    for name, other in (("weaker", "stronger"), ("stronger", "weaker")):
        label = f"mmlupro-{name}{len(halves[name])}"
        for q in np.flatnonzero(keep):
            cols["prompt_id"].append(f"mmlupro_{qids[q]}")
            cols["policy"].append(label)
            cols["pass_rate"].append(rate[name][q])
            cols["n_samples"].append(int(observed[name][q]))
            cols["prompt"].append(prompts[qids[q]])
            cols["prior"].append(rate[other][q])
    return PassRateTable.from_columns(source=source, **cols)


def load_any(path, mmlupro_view: str = "halves") -> PassRateTable:
    """A table file, or one of the shared data folders (recognised by their files)."""
    path = Path(path)
    if path.is_dir():
        if (path / "prompt_dict.json").is_file():
            return load_v0_demo(path)
        if (path / "correct.csv").is_file():
            return load_mmlupro(path, view=mmlupro_view)
        raise TableError(f"{path}: a folder, but neither v0_demo nor mmlupro_29models; pass a .jsonl or .csv table")
    return load_table(path)
