"""Design checks of the value model's head on v0_demo (strictly cold leave-one-policy-out training).

1. Loss: rank_weight (V0's pairwise ranking share) and ridge, scored by intra-context AUC of the head, cold
   and with history, on the half split.
2. On mmlupro_29models (8 models held out of training, the other 21 as training and history): the prior
   precision of the in-context stacking weights on other policies' residuals (``stack_prior``; inf = off).
3. An in-context Gaussian-process correction of the logit residuals of the context (policy-specific
   similarity in embedding space), added on top of the item-response prediction: AUC and held-out
   log-likelihood for a grid of (signal variance, length-scale); signal variance 0 is the shipped head.

All three check the head without the in-context correction of the text prior (``adapt=False``): they were
measured before it existed, and its own checks are in :mod:`v05.bench.value_protocol`.

    v05 bench value-ablation
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import cho_factor, cho_solve
from scipy.special import logit
from threadpoolctl import threadpool_limits

from v05.stats import intra_context_auc
from v05.bench.value_eval import evaluate, leave_policies_out, split_context
from v05.data import load_v0_demo
from v05.value.irt import fit_irt, logit_normal_loglik


def loss_grid(table, seed):
    print("| rank_weight | ridge | AUC cold | AUC with history |\n|---|---|---|---|")
    for rank_weight, ridge in [(0.0, 0.03), (0.25, 0.03), (1.0, 0.03), (0.25, 0.003), (0.25, 0.3), (0.25, 3.0)]:
        models = leave_policies_out(table, n_folds=6, seed=seed, unseen_prompts=True, rank_weight=rank_weight, ridge=ridge,
                                     adapt=False)
        m = evaluate(table, models, split="half", seed=seed, rivals=False)["methods"]
        print(f"| {rank_weight} | {ridge} | {m['value_cold']['auc']:.3f} | {m['value']['auc']:.3f} |", flush=True)


def stack_grid(root, seed):
    from v05.data import load_mmlupro
    from v05.value import ValueModel

    table = load_mmlupro(root / "mmlupro_29models", view="models")
    held = list(np.random.default_rng(seed).permutation(table.policies)[:8])
    vm = ValueModel(adapt=False).fit(table.select(~np.isin(table.policy, held)))
    print("\n| stack_prior | AUC with history | Brier | ECE |\n|---|---|---|---|")
    for prior in (np.inf, 1000.0, 100.0, 10.0, 1.0):
        vm.stack_prior = prior
        m = evaluate(table, vm, split="half", seed=seed, rivals=False, policies=held)["methods"]["value"]
        print(f"| {prior} | {m['auc']:.3f} | {m['brier']:.3f} | {m['ece']:.3f} |", flush=True)


def gp_grid(table, seed):
    models = leave_policies_out(table, n_folds=6, seed=seed, unseen_prompts=True, adapt=False)
    is_context = split_context(table, split="half", seed=seed)
    episodes = []
    for pol in table.policies:
        vm, mine = models[pol], table.policy == pol
        ctx, qry = np.flatnonzero(mine & is_context), np.flatnonzero(mine & ~is_context)
        texts = list(dict.fromkeys(table.prompt[ctx].tolist() + table.prompt[qry].tolist()))
        index = {t: i for i, t in enumerate(texts)}
        ci = np.array([index[t] for t in table.prompt[ctx]])
        qi = np.array([index[t] for t in table.prompt[qry]])
        n = table.n_samples[ctx].astype(float)
        fit = fit_irt(np.zeros(len(ctx), int), ci, table.pass_rate[ctx], n, vm.text_difficulty(texts), 1,
                      tau2=vm.tau2_, s2=vm.s2_)
        episodes.append((vm, fit, vm.embed(texts).astype(float), ci, qi, table.pass_rate[ctx], n,
                         table.pass_rate[qry], table.n_samples[qry].astype(float)))
    print("\n| GP signal var | length-scale | AUC cold | log-lik per query |\n|---|---|---|---|")
    for sg2, ell in [(0.0, 0.0), *itertools.product((0.5, 1.0, 2.0), (0.1, 0.4))]:
        aucs, lls = [], []
        for vm, fit, x, ci, qi, pc, nc, pq, nq in episodes:
            smooth = (pc * nc + 0.5) / (nc + 1)
            resid = logit(smooth) - (fit.a[0] - fit.d[ci])  # (n_context,)
            noise = fit.d_var[ci] + vm.s2_ + 1 / (nc * smooth * (1 - smooth))
            mean, var = fit.a[0] - fit.d[qi], fit.d_var[qi] + fit.a_var[0] + vm.s2_
            if sg2 > 0:
                k_cc = sg2 * np.exp(-(1 - x[ci] @ x[ci].T) / ell)  # (n_context, n_context)
                k_qc = sg2 * np.exp(-(1 - x[qi] @ x[ci].T) / ell)  # (n_query, n_context)
                chol = cho_factor(k_cc + np.diag(noise))
                mean = mean + k_qc @ cho_solve(chol, resid)
                var = var + sg2 - np.einsum("ij,ji->i", k_qc, cho_solve(chol, k_qc.T))
            aucs.append(intra_context_auc(mean, pq, np.zeros(len(pq))))
            lls.append(logit_normal_loglik(pq, nq, mean, var).mean())
        print(f"| {sg2} | {ell if sg2 else '-'} | {np.mean(aucs):.3f} | {np.mean(lls):.4f} |", flush=True)


def run(data: Path, seed: int = 0) -> None:
    """Print the three tables, from the shared data folder ``data``."""
    torch.set_num_threads(1)
    threadpool_limits(1)  # a multi-threaded BLAS call on shared cores can be 20x slower
    table = load_v0_demo(Path(data) / "v0_demo")
    loss_grid(table, seed)
    stack_grid(Path(data), seed)
    gp_grid(table, seed)
