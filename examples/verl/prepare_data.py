"""Write verl RLHFDataset parquet files with a ``prior_value`` column from the value model (or, with
``--prior history``, from each prompt's own past outcomes).

    HF_HUB_OFFLINE=1 python examples/verl/prepare_data.py --train TRAIN.jsonl --out data/v05 \
        --context TABLE [--context-policy NAME] [--prior value_model|history] \
        [--benchmarks ../shared/data/math_benchmarks] [--limit N]

``--train`` is a JSONL of prompts with reference answers (fields ``prompt`` or ``problem``, ``answer``, optional
``id``), e.g. DAPO-Math-17k exported to JSONL on a machine that has it. ``--context`` is a pass-rate table with
prompt texts (``docs/data.md``; any path ``v05.data.load_any`` reads, e.g. ``../shared/data/v0_demo``) of the
starting policy: the value model reads the policy's ability from it (``--context-policy`` keeps one policy's
rows). Measure it by sampling the starting policy on a few hundred training prompts. ``--prior history`` needs no
value model: the table's rows (with their rollout counts) are the outcome history, and each training prompt gets
the Beta posterior of its own rows matched by text around a Beta prior fitted on all of them
(``v05.value.HistoryPrior``; prompts without a row get the fitted prior), e.g. the pass rates of a previous
epoch; the same prior from the run's own outcomes needs no column (``+v05.prior_source=history``,
``docs/verl.md``). ``--benchmarks`` writes
``val.parquet`` from the six evaluation benchmarks (AIME24, AIME25, AMC23, MATH500, Minerva Math, OlympiadBench).

Each row has verl's columns (``data_source``, ``prompt`` as chat messages, ``ability``, ``reward_model`` with
the ground truth, ``extra_info`` with ``index``) plus ``prior_value`` in [0, 1] and ``prior_var``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

INSTRUCTION = "Solve the problem. Put the final answer in \\boxed{}."
EVAL_SETS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench")


def read_prompts(path: Path, limit: int | None) -> list[dict]:
    rows = []
    with path.open() as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            text = row.get("prompt") or row.get("problem")
            if not text or "answer" not in row:
                raise ValueError(f"{path} line {i + 1}: needs 'prompt' (or 'problem') and 'answer'")
            rows.append({"id": str(row.get("id", i)), "text": text, "answer": str(row["answer"])})
    return rows


def priors(texts: list[str], context_path: Path, policy: str | None,
           source: str = "value_model") -> tuple[np.ndarray, np.ndarray]:
    """Pass rate and variance per prompt from the policy's own (prompt, pass rate) rows: the value model's
    prediction, or (``source='history'``) each prompt's Beta posterior of its own rows."""
    from v05.data import load_any
    from v05.value import HistoryPrior, OutcomeHistory, ValueModel

    table = load_any(context_path)
    if policy is not None:
        table = table.select(np.asarray(table.policy) == policy)
    if len(table) == 0 or table.prompt is None:
        raise ValueError(f"--context {context_path} has no rows with prompt text{f' for policy {policy!r}' if policy else ''}")
    if source == "history":
        if table.n_samples is None:
            raise ValueError(f"--context {context_path} has no rollout counts (n_samples): --prior history needs "
                             "them to weigh each row")
        history = OutcomeHistory()
        history.add(0, list(table.prompt), np.asarray(table.pass_rate, dtype=float), table.n_samples)
        prior = HistoryPrior().predict(history, 1, texts)
        return prior.mean, prior.var
    model = ValueModel.load("default")
    return model.predict(list(table.prompt), np.asarray(table.pass_rate, dtype=float), texts,
                         context_n_samples=None if table.n_samples is None else table.n_samples)


def verl_rows(rows: list[dict], source: str, mean=None, var=None) -> list[dict]:
    out = []
    for i, row in enumerate(rows):
        record = {
            "data_source": source,
            "prompt": [{"role": "user", "content": f"{row['text']}\n\n{INSTRUCTION}"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": row["answer"]},
            "extra_info": {"index": i, "id": row["id"]},
        }
        if mean is not None:
            record["prior_value"], record["prior_var"] = float(mean[i]), float(var[i])
        out.append(record)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--context", type=Path, required=True)
    parser.add_argument("--context-policy", default=None)
    parser.add_argument("--prior", choices=("value_model", "history"), default="value_model")
    parser.add_argument("--benchmarks", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    import pandas as pd

    from v05.tasks.math_reward import load_math_benchmark

    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_prompts(args.train, args.limit)
    mean, var = priors([r["text"] for r in rows], args.context, args.context_policy, args.prior)
    pd.DataFrame(verl_rows(rows, "dapo_math", mean, var)).to_parquet(args.out / "train.parquet")
    print(f"train.parquet: {len(rows)} prompts, prior mean {mean.mean():.3f} (min {mean.min():.3f}, max {mean.max():.3f})")
    if args.benchmarks is not None:
        val = []
        for name in EVAL_SETS:
            problems = load_math_benchmark(name, args.benchmarks)
            val += verl_rows([{"id": p.prompt_id, "text": p.prompt, "answer": p.answer} for p in problems], name)
        pd.DataFrame(val).to_parquet(args.out / "val.parquet")
        print(f"val.parquet: {len(val)} problems from {', '.join(EVAL_SETS)}")


if __name__ == "__main__":
    main()
