"""Loaders that turn the shared real data sets (``../shared/data``) into pass-rate tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from v05.data.table import PassRateTable, TableError, load_table

V0_DEMO_FILES = ("context.jsonl", "train.jsonl", "test.jsonl")
V0_DEMO_SAMPLES = 10
"""v0_demo scores are multiples of 0.2 on the +-1 scale: about 10 rollouts each (SOURCE.md)."""


def load_v0_demo(root) -> PassRateTable:
    """The V0 paper's released data: 6 policies x 576 DAPO-Math prompts.

    ``policy`` is ``"<model>@<step>"``, ``pass_rate = (score + 1) / 2`` (scores are means of +-1 rewards),
    ``split`` is the file's ``type`` (context / train_query / test_query), ``prompt`` the problem text.
    """
    root = Path(root)
    prompts_path = root / "prompt_dict.json"
    if not prompts_path.is_file():
        raise TableError(f"{root}: not a v0_demo folder (no prompt_dict.json)")
    texts = json.loads(prompts_path.read_text(encoding="utf-8"))
    cols: dict[str, list] = {k: [] for k in ("prompt_id", "policy", "pass_rate", "n_samples", "prompt", "split")}
    for name in V0_DEMO_FILES:
        path = root / name
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                row = json.loads(line)
                try:
                    key = f"{row['dataset']}_{row['id']}"
                    score = float(row["score"])
                    policy = f"{row['model']}@{row['step']}"
                    split = row["type"]
                except KeyError as e:
                    raise TableError(f"{path}, row {line_no}: missing field {e.args[0]!r}") from None
                if key not in texts:
                    raise TableError(f"{path}, row {line_no}, column 'id': no prompt text for {key!r}")
                if not -1.0 <= score <= 1.0:
                    raise TableError(f"{path}, row {line_no}, column 'score': {score} is outside [-1, 1]")
                cols["prompt_id"].append(key)
                cols["policy"].append(policy)
                cols["pass_rate"].append(round((score + 1.0) / 2.0, 10))
                cols["n_samples"].append(V0_DEMO_SAMPLES)
                cols["prompt"].append(texts[key])
                cols["split"].append(split)
    return PassRateTable.from_columns(source=str(root), **cols)


def _mmlupro_prompts(root: Path) -> dict[str, str]:
    """Question text with lettered options, by question id."""
    prompts = {}
    with open(root / "questions.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            options = "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(q["options"]))
            prompts[str(q["question_id"])] = f"{q['question']}\n{options}"
    return prompts


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
    if view not in ("models", "halves"):
        raise ValueError(f"view={view!r}; expected 'models' or 'halves'")
    prompts = _mmlupro_prompts(root)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        models = header[2:]
        qids, cats, grid = [], [], []
        for line_no, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise TableError(f"{path}, row {line_no}: {len(row)} fields, header has {len(header)}")
            if category is not None and row[1] != category:
                continue
            qids.append(row[0])
            cats.append(row[1])
            grid.append([np.nan if v == "" else float(v) for v in row[2:]])
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
