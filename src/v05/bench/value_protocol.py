"""The value model against its rivals, in domain and out of domain, each model trained without what it predicts.

Protocol (fixed before any result of it was seen; nothing below was tuned on these cells)
----------------------------------------------------------------------------------------
Methods, all on the same queries and the same encoder's embeddings (``--encoder``):
  value / value_cold            the shipped head with the in-context correction of the text prior
                                (v05.value.adapt), with and without other policies' rows as history
  value_meta / value_meta_cold  the same models without the correction (the head before this change)
  value_surface / value_cold_surface  the same models with ``correction="surface"`` (v05.value.adapt_loo,
                                issue 18: surface features beside the embedding, the correction's strength and
                                the text prior's variance chosen in context by leave-one-out)
  context_mean, knn (k=20), ridge (strength by leave-one-out over 1e-1..1e4), logistic (C=1), length,
  surface (ridge on the context-standardised surface features of v05.value.surface, strength by leave-one-out)
                                rivals that read only the policy's context: the cold comparison
  history_mean                  other policies' mean pass rate on the same prompt (history rival)
Metrics: intra-context AUC (pass rate >= 0.5 positive), Brier, ECE (10 bins), MSE; coverage of the 1-sigma
and 90% predictive intervals on rows from >= 5 samples (v0_demo; mmlupro rows are single 0/1 outcomes);
95% bootstrap intervals (200 resamples of the queries within each policy and seed).
Seeds: every cell is run for seeds 0, 1, 2 (split of each policy's rows into context and queries, policy
folds, and the models' random_state), pooled with each (policy, seed) as one group; except
``mmlupro_category_out`` (seed 0 only: 28 fits; its 14 categories x 29 models are the replication).

Cells and what each model never saw in training:
  in domain
    v0_column      v0_demo, each policy's 512 context prompts -> its 64 queries (V0's split). 6 models, each
                   trained on the other 5 policies minus every row on the evaluated policy's 576 prompts.
    v0_half        as v0_column, a random half of each policy's rows as context, the rest as queries.
    v0_column_with_mmlupro  as v0_column, each model also trained on all of mmlupro_29models (as the
                   shipped default is): does a second domain in training help or hurt? (added to the
                   protocol after the first two cells had run, before any result of it)
    mmlupro        mmlupro_29models (models view), half split; 5 folds of models, each model trained on
                   the other folds' models (all questions: the queries were seen under other models).
    mmlupro_by_category  the mmlupro models above, evaluated on one category at a time (context and
                   queries from that category only): the in-domain reference of the next cell.
  out of domain
    v0_from_mmlupro_column / _half   one model trained on all of mmlupro_29models; v0_demo evaluated as in
                   v0_column / v0_half. No v0_demo prompt or policy is in mmlupro.
    mmlupro_from_v0  one model trained on all of v0_demo; mmlupro evaluated as in mmlupro.
    mmlupro_category_out  for each of the 14 categories: 2 folds of the 29 models; each model trained on
                   the other 13 categories' questions under the other fold's models (no question of the
                   category, no evaluated model); evaluated on that category, half split.
The in-sample record of every cell (what of the evaluated policies and query prompts the models saw) is in
its value.json and must read 0 policies and, except ``mmlupro``/``mmlupro_by_category``, 0% of prompts.
Decision rules, also fixed in advance (docs/value.md): the adaptive head becomes the default if its history
AUC is within 0.005 of the meta head's in every in-domain cell; SmolLM2 replaces MiniLM as the default
encoder only if its cold AUC is higher in most cells and lower by more than 0.01 in none.
Issue 18 (added with value_surface / value_cold_surface and the surface rival, before any of their results):
  goal  in every cell, ``value_cold_surface`` is below no cold rival (context_mean, knn, ridge, logistic,
        length, surface) beyond its interval (no rival's AUC above the upper end of its 95% interval), and
        its ECE is <= 0.05;
  rule  ``correction="surface"`` becomes the default of ``adapt`` if ``value_cold_surface``'s AUC is higher
        than ``value_cold``'s in most cells and lower by more than 0.01 in none, and ``value_surface``'s AUC is
        within 0.005 of ``value``'s in every cell.
  runs  (one process, nice, 1 thread) first the four v0_demo cells, then ``--mmlupro-subset 4000`` for
        mmlupro_from_v0 and mmlupro_category_out (math) as a quick look, then the full mmlupro_from_v0 and
        mmlupro_category_out (math), then, as time allows, mmlupro and mmlupro_by_category (math).
  change after the first look (v0_demo cells and the 4000-question mmlupro_from_v0 / category-out math,
        runs/bench/value_surface and value_surface_sub4000, version 1): every leave-one-out likelihood now
        profiles a common logit shift (the ability's re-fit), and a prompt with other policies' rows keeps the
        trained tau2 (version 1 chose no correction for skewed 0/1 contexts, and its history ECE rose on
        mmlupro_from_v0); the cells are then rerun in full with version 2 (runs/bench/value_surface2).

``--seeds`` and ``--categories`` (the categories of the two per-category cells) run a smaller part of this
protocol when time is short; each cell's value.json records the seeds and categories it ran.

``--mmlupro-subset N`` evaluates and trains on a fixed random sample of N mmlupro questions (seed 0), for the
encoder comparison (a causal LM embeds the full 12k questions in hours on 2 shared cores).

    v05 bench value --out runs/bench/value
    v05 bench value --priors --settings none --out runs/bench/value

Writes --out/<cell>/value.{json,md} + calibration.png, and --out/summary.{json,md,png} over every cell
found in --out (cells may be run in separate invocations).
"""

from __future__ import annotations

import csv
import json
import time
from functools import cache
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from v05.bench.value_eval import bench_priors, combine, evaluate, leave_policies_out, question_subset
from v05.bench.value_report import write_report, write_summary
from v05.data import load_mmlupro, load_v0_demo

CELLS = ("v0_column", "v0_half", "v0_column_with_mmlupro", "mmlupro", "mmlupro_by_category", "v0_from_mmlupro_column",
         "v0_from_mmlupro_half", "mmlupro_from_v0", "mmlupro_category_out")
SEEDS = (0, 1, 2)
CATEGORY_FOLDS = 2


class Data:
    """The shared tables (loaded once) and the fitted models (fitted once per key)."""

    def __init__(self, root: Path, encoder: str, subset: int, categories: str = ""):
        self.root, self.encoder, self.subset = root, encoder, subset
        self.only = [c for c in categories.split(",") if c]
        self._models: dict = {}

    @cache
    def v0(self):
        return load_v0_demo(self.root / "v0_demo")

    @cache
    def mmlupro(self, category=None):
        """The models view (one category, or all), restricted to the question subset when one is set."""
        table = load_mmlupro(self.root / "mmlupro_29models", view="models", category=category)
        return table.select(np.isin(table.prompt_id, self.subset_ids())) if self.subset else table

    @cache
    def subset_ids(self):
        full = load_mmlupro(self.root / "mmlupro_29models", view="models")
        return np.unique(question_subset(full, self.subset, seed=0).prompt_id)

    @cache
    def categories(self) -> list[str]:
        """MMLU-Pro categories in file order (column 2 of correct.csv), or those of ``--categories``."""
        with open(self.root / "mmlupro_29models" / "correct.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))[1:]
        found = list(dict.fromkeys(row[1] for row in rows))
        unknown = set(self.only) - set(found)
        if unknown:
            raise ValueError(f"--categories: unknown {sorted(unknown)}; known: {', '.join(found)}")
        return [c for c in found if c in self.only] if self.only else found

    def models(self, key, make):
        if key not in self._models:
            t0 = time.perf_counter()
            self._models[key] = make()
            print(f"  fitted {key} in {time.perf_counter() - t0:.0f} s", flush=True)
        return self._models[key]

    def params(self, seed):
        return {"encoder": self.encoder, "random_state": seed}


def cell_runs(cell: str, data: Data, seed: int):
    """``[(table, models, split, seed)]`` evaluated and pooled for one cell and seed."""
    p = data.params(seed)
    if cell in ("v0_column", "v0_half"):
        models = data.models(("v0", seed), lambda: leave_policies_out(data.v0(), n_folds=6, seed=seed, unseen_prompts=True, **p))
        return [(data.v0(), models, cell.split("_")[1], seed)]
    if cell == "v0_column_with_mmlupro":
        models = data.models(("v0+mmlupro", seed), lambda: v0_models_with(data.mmlupro(), data.v0(), seed, p))
        return [(data.v0(), models, "column", seed)]
    if cell in ("mmlupro", "mmlupro_by_category"):
        models = data.models(("mmlupro", seed), lambda: leave_policies_out(data.mmlupro(), n_folds=5, seed=seed, **p))
        if cell == "mmlupro":
            return [(data.mmlupro(), models, "half", seed)]
        return [(data.mmlupro(c), models, "half", seed) for c in data.categories()]
    if cell.startswith("v0_from_mmlupro"):
        model = data.models(("from_mmlupro", seed), lambda: leave_policies_out(
            data.v0(), n_folds=0, train_tables=[data.mmlupro()], **p))
        return [(data.v0(), model, cell.rsplit("_", 1)[1], seed)]
    if cell == "mmlupro_from_v0":
        model = data.models(("from_v0", seed),
                            lambda: leave_policies_out(data.mmlupro(), n_folds=0, train_tables=[data.v0()], **p))
        return [(data.mmlupro(), model, "half", seed)]
    if cell == "mmlupro_category_out":
        if seed != 0:
            return []
        return [(data.mmlupro(c), data.models(("category_out", c), lambda c=c: leave_policies_out(
            data.mmlupro(c), n_folds=CATEGORY_FOLDS, seed=seed, train_tables=[data.mmlupro()], **p)), "half", seed)
            for c in data.categories()]
    raise ValueError(f"unknown cell {cell!r}; known: {CELLS}")


def v0_models_with(extra, v0, seed: int, params: dict) -> dict:
    """Leave-one-policy-out models of v0_demo (each without the policy and its prompts), each also trained on
    the ``extra`` table."""
    from v05.value import ValueModel

    models = {}
    for pol in np.random.default_rng(seed).permutation(v0.policies):
        train = (v0.policy != pol) & ~np.isin(v0.prompt, v0.prompt[v0.policy == pol])
        models[pol] = ValueModel(**params).fit(v0.select(train), extra)
    return models


def run_cell(cell: str, data: Data, out: Path, *, seeds: tuple[int, ...], n_boot: int) -> dict[str, Path]:
    """Evaluate one cell over ``seeds``, pooled; write its report into ``out / cell`` (paths returned)."""
    t0 = time.perf_counter()
    runs = [run for seed in seeds for run in cell_runs(cell, data, seed)]
    results = [evaluate(table, models, split=split, seed=seed) for table, models, split, seed in runs]
    pooled = combine(results, n_boot=n_boot)
    ran = sorted({seed for *_, seed in runs})  # the seeds actually run (mmlupro_category_out: 0 only)
    categories = ",".join(data.only)
    meta = {"cell": cell, "encoder": data.encoder, "seeds": ran, "mmlupro_subset": data.subset,
            "categories": data.categories() if "category" in cell else None,
            "in_sample": pooled["in_sample"], "protocol": "v05.bench.value_protocol docstring",
            "command": f"HF_HUB_OFFLINE=1 v05 bench value --settings {cell} "
                       f"--encoder {data.encoder} --mmlupro-subset {data.subset} --seeds {','.join(map(str, seeds))}"
                       + (f" --categories {categories}" if categories else "")}
    paths = write_report(pooled, out / cell, title=f"{cell} ({data.encoder})", meta=meta)
    print(paths["markdown"].read_text())
    print(f"({cell}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    return paths


def prior_quality(data: Data, out: Path, seed: int) -> None:
    """MSE of ``bench_priors`` (the priors of ``v05 bench baseline --prior value``) against the pass rate."""
    halves = load_mmlupro(data.root / "mmlupro_29models", view="halves")
    figures = {}
    for name, table, kwargs in [("v0_demo default", data.v0(), {}), ("v0_demo refit 6 folds", data.v0(), {"refit_folds": 6}),
                                ("mmlupro halves default", halves, {})]:
        prior, var = bench_priors(table, seed=seed, **kwargs)
        mean = {pol: table.pass_rate[table.policy == pol].mean() for pol in table.policies}
        policy_mean = np.array([mean[pol] for pol in table.policy])
        figures[name] = {"prior_mse": float(np.mean((prior - table.pass_rate) ** 2)),
                         "policy_mean_mse": float(np.mean((policy_mean - table.pass_rate) ** 2)),
                         "mean_predicted_var": float(np.mean(var))}
        print(name, {k: round(v, 4) for k, v in figures[name].items()}, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "priors.json").write_text(json.dumps(figures, indent=2) + "\n")


def check(cells: list[str], data: Data) -> None:
    """Raise ``ValueError`` if a cell of ``cells`` or a category of ``data`` is unknown."""
    unknown = set(cells) - set(CELLS)
    if unknown:
        raise ValueError(f"--settings: unknown cells {sorted(unknown)}; known: {', '.join(CELLS)}")
    if data.only:
        data.categories()


def run(out: Path, cells: list[str], data: Data, *, seeds: tuple[int, ...] = SEEDS, n_boot: int = 200,
        priors: bool = False) -> None:
    """Run ``cells`` (each written to ``out / cell``), then the summary of every cell found in ``out`` (also
    from earlier invocations), and with ``priors`` the benchmark priors' quality (``out / priors.json``).
    Unknown cells or categories fail (:func:`check`) before any model is fitted.
    """
    check(cells, data)
    torch.set_num_threads(1)
    threadpool_limits(1)  # a multi-threaded BLAS call on shared cores can be 20x slower
    for cell in cells:
        run_cell(cell, data, out, seeds=seeds, n_boot=n_boot)
    done = {c: json.loads((out / c / "value.json").read_text()) for c in CELLS if (out / c / "value.json").is_file()}
    if done:
        write_summary(done, out, title=f"Value model vs rivals ({data.encoder})")
    if priors:
        prior_quality(data, out, seeds[0])
