"""Evaluation of the value model against baselines, and out-of-context priors for the benchmarks.

Per policy, part of its rows is the context and the rest are queries; the other policies' rows (on any
prompt) are history. Every method is scored on the same queries.
"""

from __future__ import annotations

import numpy as np

from v05.bench.metrics import summarize
from v05.bench.value_rivals import CONTEXT_RIVALS, history_mean
from v05.data import PassRateTable
from v05.value.model import ValueModel

HEAD = "value"
HEAD_COLD = "value_cold"


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


def evaluate(table, models, *, split: str = "half", seed: int = 0, rivals: bool = True, policies=None) -> dict:
    """Score the value model (with and without history) and the baselines on every policy's queries.

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

    Returns
    -------
    dict
        ``{"methods": {name: metrics}, "predictions": {name: (mean, var or None)}, "pass_rate", "policy",
        "n_samples"}`` over the concatenated queries.
    """
    table = _require_prompts(table)
    is_context = split_context(table, split=split, seed=seed)
    n_all = np.ones(len(table)) if table.n_samples is None else table.n_samples.astype(float)
    preds: dict[str, list] = {}
    p_out, g_out, n_out = [], [], []
    unknown = sorted(set(policies or ()) - set(table.policies))
    if unknown:
        raise ValueError(f"unknown policies {unknown[:5]}; the table has {table.policies[:5]}...")
    for pol in policies or table.policies:
        vm = _model_for(models, pol)
        mine = table.policy == pol
        ctx, qry = np.flatnonzero(mine & is_context), np.flatnonzero(mine & ~is_context)
        if len(ctx) == 0 or len(qry) == 0:
            raise ValueError(f"policy {pol!r} has {len(ctx)} context and {len(qry)} query rows; both must be > 0")
        history = table.select(~mine)
        c_txt, q_txt = table.prompt[ctx].tolist(), table.prompt[qry].tolist()
        common = dict(context_n_samples=n_all[ctx])
        _add(preds, HEAD, vm.predict(c_txt, table.pass_rate[ctx], q_txt, history=history, **common))
        _add(preds, HEAD_COLD, vm.predict(c_txt, table.pass_rate[ctx], q_txt, **common))
        if rivals:
            cx, qx = vm.embed(c_txt), vm.embed(q_txt)
            for name, fn in CONTEXT_RIVALS.items():
                _add(preds, name, (fn(cx, table.pass_rate[ctx], qx), None))
            hm = history_mean(table.pass_rate[ctx], q_txt, history.prompt.tolist(), history.pass_rate)
            _add(preds, "history_mean", (hm, None))
        p_out.append(table.pass_rate[qry])
        g_out.append(table.policy[qry])
        n_out.append(n_all[qry])
    p, g, n = np.concatenate(p_out), np.concatenate(g_out), np.concatenate(n_out)
    predictions = {k: (np.concatenate([m for m, _ in v]), None if v[0][1] is None else np.concatenate([s for _, s in v]))
                   for k, v in preds.items()}
    methods = {k: summarize(m, p, g, var=v, n_samples=None if v is None else n) for k, (m, v) in predictions.items()}
    return {"methods": methods, "predictions": predictions, "pass_rate": p, "policy": g, "n_samples": n}


def _add(preds, name, result):
    preds.setdefault(name, []).append(result)


def leave_policies_out(table, *, n_folds: int, seed: int = 0, unseen_prompts: bool = False, **params) -> dict:
    """One ValueModel per fold of policies, meta-trained on the other folds: ``{policy: model}``.

    With ``unseen_prompts``, the training rows also exclude every prompt of the held-out policies, so their
    text-difficulty prior has never seen those prompts' outcomes under any policy (a strictly cold test).
    ``params`` go to :class:`ValueModel`.
    """
    policies = np.random.default_rng(seed).permutation(table.policies)
    n_folds = min(n_folds, len(policies))
    models = {}
    for k in range(n_folds):
        held = set(policies[k::n_folds].tolist())
        train = ~np.isin(table.policy, list(held))
        if unseen_prompts:
            train &= ~np.isin(table.prompt, table.prompt[~train])
        vm = ValueModel(**params).fit(table.select(train))
        models.update({pol: vm for pol in held})
    return models


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
