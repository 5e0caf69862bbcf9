"""Evaluation of the value model against baselines, and out-of-context priors for the benchmarks.

Per policy, part of its rows is the context and the rest are queries; the other policies' rows (on any
prompt) are history. Every method is scored on the same queries.
"""

from __future__ import annotations

import copy

import numpy as np

from v05.stats import POSITIVE_AT, auc, bootstrap_rows, ece, percentile_interval, summarize
from v05.bench.value_rivals import CONTEXT_RIVALS, Prompts, history_mean
from v05.data import PassRateTable
from v05.value.model import ValueModel

HEAD = "value"
HEAD_COLD = "value_cold"
SURFACE, SURFACE_COLD = "value_surface", "value_cold_surface"


def split_context(table, *, split: str = "half", seed: int = 0) -> np.ndarray:
    """Boolean mask of context rows: per policy a random half (``"half"``), or ``split == "context"``
    (``"column"``, v0_demo's own split)."""
    if split == "column":
        if table.split is None:
            raise ValueError("split='column' needs a 'split' column in the table")
        return table.split == "context"
    if split != "half":
        raise ValueError(f"split={split!r}; expected 'half' or 'column'")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(table), dtype=bool)
    for pol in table.policies:
        rows = rng.permutation(np.flatnonzero(table.policy == pol))
        mask[rows[: len(rows) // 2]] = True
    return mask


def _model_for(models, policy: str) -> ValueModel:
    return models[policy] if isinstance(models, dict) else models


def evaluate(table, models, *, split: str = "half", seed: int = 0, rivals: bool = True, policies=None,
             n_boot: int = 0) -> dict:
    """Score the value model (cold and with history) and the baselines on every policy's queries.

    Parameters
    ----------
    table : PassRateTable
        Needs a ``prompt`` column.
    models : ValueModel or dict of policy -> ValueModel
        A dict lets each policy use a model meta-trained without it (leave-policies-out).
    split : {"half", "column"}
    seed : int
    rivals : bool
        Also score the baselines.
    policies : list of str, optional
        Evaluate only these policies (all rows remain available as history).
    n_boot : int, default=0
        If > 0, add 95% bootstrap intervals (``auc_ci``, ``brier_ci``, ``ece_ci``; queries resampled within
        each policy) to every method's metrics.

    Returns
    -------
    dict
        ``{"methods": {name: metrics}, "predictions": {name: (mean, var or None)}, "pass_rate", "policy",
        "n_samples", "in_sample"}`` over the concatenated queries; ``in_sample`` is :func:`in_sample`'s record.
        ``value``/``value_cold`` are the model as configured; a model that adapts in context
        (``adapt=True``) is also scored without it as ``value_meta``/``value_meta_cold``; a model whose
        correction is not ``"surface"`` is also scored with that one as ``value_surface``/``value_cold_surface``.
    """
    table = _require_prompts(table)
    is_context = split_context(table, split=split, seed=seed)
    n_all = np.ones(len(table)) if table.n_samples is None else table.n_samples.astype(float)
    policies = _check_policies(table, policies)
    embed_up_front(table, models, policies)
    preds: dict[str, list] = {}
    queries = []
    for pol in policies:
        mine = table.policy == pol
        ctx, qry = np.flatnonzero(mine & is_context), np.flatnonzero(mine & ~is_context)
        if len(ctx) == 0 or len(qry) == 0:
            raise ValueError(f"policy {pol!r} has {len(ctx)} context and {len(qry)} query rows; both must be > 0")
        for name, result in _predict_policy(_model_for(models, pol), table, ctx, qry, n_all, rivals).items():
            preds.setdefault(name, []).append(result)
        queries.append(qry)
    qry = np.concatenate(queries)
    p, g, n = table.pass_rate[qry], table.policy[qry], n_all[qry]
    predictions = {k: (np.concatenate([m for m, _ in v]), None if v[0][1] is None else np.concatenate([s for _, s in v]))
                   for k, v in preds.items()}
    methods = {k: summarize(m, p, g, var=v, n_samples=None if v is None else n) for k, (m, v) in predictions.items()}
    if n_boot:
        _add_intervals(methods, predictions, p, g, n_boot=n_boot, seed=seed)
    return {"methods": methods, "predictions": predictions, "pass_rate": p, "policy": g, "n_samples": n,
            "in_sample": in_sample(table, models, policies, is_context)}


def _check_policies(table, policies) -> list:
    unknown = sorted(set(policies or ()) - set(table.policies))
    if unknown:
        raise ValueError(f"unknown policies {unknown[:5]}; the table has {table.policies[:5]}...")
    return list(policies or table.policies)


def embed_up_front(table, models, policies) -> None:
    """Embed every prompt of ``table`` once per distinct model, before the per-policy loop: the slow first
    pass of a neural encoder runs in one batch with one progress bar (later calls hit the memo)."""
    texts = list(dict.fromkeys(table.prompt.tolist()))
    for vm in {id(m): m for m in (_model_for(models, pol) for pol in policies)}.values():
        vm.text_difficulty(texts)


def _predict_policy(vm, table, ctx, qry, n_all, rivals: bool) -> dict:
    """Predictions ``{method: (mean, var or None)}`` for one policy's query rows ``qry`` from its context rows."""
    history = table.select(table.policy != table.policy[ctx[0]])
    c_txt, q_txt, c_p = table.prompt[ctx].tolist(), table.prompt[qry].tolist(), table.pass_rate[ctx]
    out = {}
    variants = [(HEAD, HEAD_COLD, vm)]
    if vm.adapt:
        meta = copy.copy(vm)  # shares the embedding and difficulty memos
        meta.adapt = False
        variants.append(("value_meta", "value_meta_cold", meta))
    if not (vm.adapt and vm.correction == "surface"):
        surface = copy.copy(vm)
        surface.adapt, surface.correction = True, "surface"
        variants.append((SURFACE, SURFACE_COLD, surface))
    for with_history, cold, model in variants:
        out[with_history] = model.predict(c_txt, c_p, q_txt, history=history, context_n_samples=n_all[ctx])
        out[cold] = model.predict(c_txt, c_p, q_txt, context_n_samples=n_all[ctx])
    if rivals:
        cx, qx = (Prompts(vm.embed(t), np.log1p([len(s) for s in t]), vm.surface(t)) for t in (c_txt, q_txt))
        for name, fn in CONTEXT_RIVALS.items():
            out[name] = (fn(cx, c_p, qx), None)
        out["history_mean"] = (history_mean(c_p, q_txt, history.prompt.tolist(), history.pass_rate), None)
    return out


def _add_intervals(methods, predictions, p, g, *, n_boot: int, seed: int) -> None:
    """Add ``<metric>_ci`` (95% percentile bootstrap, queries resampled within each policy) in place.

    Each resample holds every group's rows as one block (``bootstrap_rows``), so the intra-context AUC is
    computed block by block: the same number as ``summarize`` gives, without comparing group labels over all
    rows (minutes per resample on a million rows)."""
    ends = np.cumsum(np.unique(g, return_counts=True)[1])[:-1]
    reps = {name: {"auc": [], "brier": [], "ece": []} for name in predictions}
    for rows in bootstrap_rows(g, n_boot=n_boot, seed=seed):
        blocks, y = np.split(rows, ends), p[rows]
        for name, (mean, _) in predictions.items():
            per_group = [auc(mean[b], p[b] >= POSITIVE_AT) for b in blocks]
            reps[name]["auc"].append(float(np.nanmean(per_group)) if np.isfinite(per_group).any() else float("nan"))
            reps[name]["brier"].append(float(np.mean((mean[rows] - (y >= POSITIVE_AT)) ** 2)))
            reps[name]["ece"].append(ece(mean[rows], y))
    for name, by_metric in reps.items():
        for key, values in by_metric.items():
            methods[name][f"{key}_ci"] = percentile_interval(values)


def in_sample(table, models, policies, is_context) -> dict:
    """What the evaluated models saw in training: the evaluated policies among their training policies, and
    the share of query rows whose prompt was in their training data (None where a model has no record)."""
    seen, shares, weights, unknown = [], [], [], False
    for pol in policies:
        rows = np.flatnonzero((table.policy == pol) & ~is_context)
        overlap = _model_for(models, pol).training_overlap([pol], table.prompt[rows].tolist())
        if overlap is None:
            unknown = True
            continue
        seen += overlap["policies"]
        shares.append(overlap["prompt_share"])
        weights.append(len(rows))
    share = float(np.average(shares, weights=weights)) if shares else None
    return {"recorded": not unknown, "n_policies": len(policies), "policies_in_training": sorted(seen),
            "query_prompt_share": share}


def in_sample_warning(record: dict) -> str | None:
    """One line saying how the figures are optimistic, or None when the models saw nothing evaluated."""
    if not record["recorded"]:
        return "the model records no training data (older format): cannot tell whether these figures are in sample"
    k, share = len(record["policies_in_training"]), record["query_prompt_share"] or 0.0
    if k:
        return (f"the model was trained on {k} of the {record['n_policies']} evaluated policies "
                f"and {share:.0%} of their query prompts: these figures are in sample (optimistic); "
                "use --refit-folds or --train-table for held-out figures")
    if share > 0:
        return (f"{share:.0%} of the query prompts were in the model's training data (under other policies): "
                "the text prior has seen their outcomes, so cold figures are optimistic")
    return None


def leave_policies_out(table, *, n_folds: int, seed: int = 0, unseen_prompts: bool = False, train_tables=None,
                       **params) -> dict | ValueModel:
    """Value models meta-trained without the policies (and, out of domain, the prompts) they predict.

    In domain (``train_tables`` None): one model per fold of ``table``'s policies, trained on the other folds:
    ``{policy: model}``. With ``unseen_prompts``, the training rows also exclude every prompt of the held-out
    policies, so their text-difficulty prior has never seen those prompts' outcomes (a strictly cold test).

    Out of domain (``train_tables`` given): models are trained on ``train_tables`` only, minus every row
    whose prompt text occurs in ``table``; with ``n_folds`` > 0 one model per fold of ``table``'s policies,
    each also without the rows of those policies (by name) in ``train_tables``; with ``n_folds`` = 0 a
    single model. ``params`` go to :class:`ValueModel`.
    """
    if train_tables is not None:
        train_tables = [t.select(~np.isin(t.prompt, table.prompt)) for t in map(_require_prompts, train_tables)]
        if n_folds == 0:
            return _fit_nonempty(train_tables, params)
    policies = np.random.default_rng(seed).permutation(table.policies)
    n_folds = min(n_folds, len(policies))
    models = {}
    for k in range(n_folds):
        held = list(policies[k::n_folds])
        if train_tables is None:
            train = ~np.isin(table.policy, held)
            if unseen_prompts:
                train &= ~np.isin(table.prompt, table.prompt[~train])
            vm = ValueModel(**params).fit(table.select(train))
        else:
            vm = _fit_nonempty([t.select(~np.isin(t.policy, held)) for t in train_tables], params)
        models.update({pol: vm for pol in held})
    return models


def _fit_nonempty(tables, params) -> ValueModel:
    tables = [t for t in tables if len(t)]
    if not tables:
        raise ValueError("no training rows left: every training prompt occurs in the evaluated table")
    return ValueModel(**params).fit(*tables)


def bench_priors(table, *, model="default", seed: int = 0, refit_folds: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-context prior (predicted pass rate) and its variance for every row of ``table``.

    Per policy the rows are split at random (seeded) into halves A and B; B is predicted from A as context
    and A from B, with the other policies' rows as history, so no row's own outcome enters its prior.

    Parameters
    ----------
    table : PassRateTable
        Needs a ``prompt`` column and at least 2 rows per policy.
    model : str, path or ValueModel, default="default"
        With ``refit_folds > 0`` only a ValueModel's constructor parameters are used.
    seed : int
    refit_folds : int, default=0
        If > 0, meta-train on ``table`` itself instead, one model per fold of policies, each without the
        policies it predicts (:func:`leave_policies_out`); it sees only what the history shows anyway. The
        honest choice when ``model`` was trained on this table (the shipped default saw the shared data).

    Returns
    -------
    prior, var : ndarray of shape (len(table),)
    """
    table = _require_prompts(table)
    if refit_folds:
        params = model.get_params() if isinstance(model, ValueModel) else {}
        models = leave_policies_out(table, n_folds=refit_folds, seed=seed, **params)
    else:
        models = model if isinstance(model, ValueModel) else ValueModel.load(model)
    half_a = split_context(table, split="half", seed=seed)
    n_all = np.ones(len(table)) if table.n_samples is None else table.n_samples.astype(float)
    prior, var = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for pol in table.policies:
        vm, mine = _model_for(models, pol), table.policy == pol
        history = table.select(~mine)
        for ctx_mask in (half_a, ~half_a):
            ctx, qry = np.flatnonzero(mine & ctx_mask), np.flatnonzero(mine & ~ctx_mask)
            if len(ctx) == 0:
                raise ValueError(f"policy {pol!r} has {mine.sum()} row(s); bench_priors needs >= 2 per policy")
            if len(qry):
                prior[qry], var[qry] = vm.predict(
                    table.prompt[ctx].tolist(), table.pass_rate[ctx], table.prompt[qry].tolist(),
                    history=history, context_n_samples=n_all[ctx],
                )
    return prior, var


def _require_prompts(table):
    """Raise without prompt texts; return the table with its text columns as object arrays.

    Fixed-width unicode columns cost 4 bytes x the longest text per row (gigabytes for mmlupro), and every
    per-policy ``select`` would copy them; object arrays share the strings.
    """
    if table.prompt is None:
        raise ValueError("the table has no 'prompt' column; the value model needs prompt texts")
    cols = table.columns()
    return PassRateTable(**{k: v.astype(object) if v.dtype.kind == "U" else v for k, v in cols.items()})


def question_subset(table, n: int, *, seed: int = 0):
    """The rows of ``n`` prompts drawn at random (seeded) from ``table``'s distinct ``prompt_id`` values, all
    policies kept; ``n`` = 0 or more than there are keeps every row. A cheaper fixed sample of a large table
    (e.g. for comparing encoders whose first embedding pass takes hours)."""
    ids = np.unique(table.prompt_id)
    if n <= 0 or n >= len(ids):
        return table
    chosen = np.random.default_rng(seed).permutation(ids)[:n]
    return table.select(np.isin(table.prompt_id, chosen))


def combine(results: list, *, n_boot: int = 0, seed: int = 0) -> dict:
    """Pool :func:`evaluate` results of several seeds: each (policy, seed) pair is one group, so the
    intra-context AUC is the mean over policies and seeds and the bootstrap resamples within each pair."""
    if len(results) == 1 and not n_boot:
        return results[0]
    groups = np.concatenate([np.char.add(r["policy"].astype(str), f"#{k}") for k, r in enumerate(results)])
    p = np.concatenate([r["pass_rate"] for r in results])
    n = np.concatenate([r["n_samples"] for r in results])
    predictions = {}
    for name, (_, var) in results[0]["predictions"].items():
        mean = np.concatenate([r["predictions"][name][0] for r in results])
        predictions[name] = (mean, None if var is None else np.concatenate([r["predictions"][name][1] for r in results]))
    methods = {k: summarize(m, p, groups, var=v, n_samples=None if v is None else n) for k, (m, v) in predictions.items()}
    if n_boot:
        _add_intervals(methods, predictions, p, groups, n_boot=n_boot, seed=seed)
    records = [r["in_sample"] for r in results]
    return {"methods": methods, "predictions": predictions, "pass_rate": p, "policy": groups, "n_samples": n,
            "in_sample": records[0] if all(rec == records[0] for rec in records) else records}
