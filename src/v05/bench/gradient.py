"""``v05 bench gradient``: every estimator's policy-gradient error against the exact gradient (issue 11).

On the built-in task one response string is rewarded (the answer and the end token), so a prompt's pass rate
is p(x) = pi(answer + EOS | x), one teacher-forced pass (:mod:`v05.rl.exact`), and the exact gradient of the
expected reward J = mean_x p(x) is one backward pass: g = mean_x grad p(x) = mean_x p(x) grad log pi(answer|x).

An estimator's gradient from k rollouts per prompt is the sequence-level score-function estimate
g_hat = 1/(M k) sum_{x,i} A_{x,i} grad log pi(y_{x,i} | x), A its advantages. (The engine's loss at ratio 1
has the same direction up to the batch's constant token count: token-mean over the same rollouts.) Rollouts
are drawn once, ``pool`` per prompt; every repeat is a k-subset of each prompt's pool, without replacement.
With s_u the score gradient of the u-th distinct (prompt, response) row of the pool, every repeat's
g_hat = sum_u w_u s_u, so its inner products come from the Gram matrix G = S S^T and c = S g: no gradient is
formed per repeat. The exact identity is checked against a many-rollout Monte Carlo estimate per snapshot.

Besides the fixed-k cells of every estimator and prior (issue 11), V0.5 fuses history priors (each prompt's
Beta posterior of m earlier rollouts of the same policy), V0.5 with the value model is compared with the
value-free and history rows by paired ratios, and every registered rollout rule drives a RolloutPlan at a
fixed budget, compared with fixed k at the same mean rollouts (issues 18 and 19; conditions in docs/rl.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from v05._validation import check_number, check_positive_int
from v05.baselines import Prior, UndefinedError, compute, get_estimator, list_estimators
from v05.bench.baseline import hallucination_prior, noise_prior
from v05.rl.exact import answer_tokens, log_pass_rates
from v05.rl.policy import Policy, token_logprobs
from v05.rl.prompts import PromptSet
from v05.rl.sampler import Sampler
from v05.rl.task import Problem, encode_prompts

FLOOR = "true_pass_rate"
"""The baseline b = p(x), the true pass rate: no per-prompt baseline does better (the floor)."""
OPTIMAL = "optimal_constant"
"""b*(x) = E[r ||s||^2] / E[||s||^2] over the prompt's pool (s the score gradient): the per-prompt constant
baseline with the least gradient variance (an oracle; it is not the pass rate when the scores of correct and
wrong responses differ in size)."""
NO_BASELINE = "none"
"""b = 0 (plain REINFORCE): the reference every baseline improves on."""


@dataclass(frozen=True)
class GradientSettings:
    """Sizes of ``v05 bench gradient`` (defaults: a few minutes on one core, docs/rl.md)."""

    prompts: int = 48
    """Prompts in the batch (drawn from the training pool)."""
    pool: int = 64
    """Rollouts drawn per prompt; every repeat is a k-subset of them."""
    group_sizes: tuple[int, ...] = (2, 4, 8)
    """k, rollouts per prompt of each estimate."""
    repeats: int = 200
    """R, estimates per (estimator, prior, k)."""
    snapshots: tuple[int, ...] = (0, 13312)
    """Policies measured: rollouts of GRPO k=4 training after the warm-up (0 = the warm-up itself)."""
    mc_rollouts: int = 512
    """Rollouts per prompt of the Monte Carlo check of the exact gradient."""
    noise_sd: float = 0.5
    """Logit-noise SD of the noisy oracle prior."""
    hallucination: float = 0.1
    """Share of mirrored (confidently wrong) priors in the hallucination prior (the rest: noisy oracle)."""
    context: int = 128
    """Other pool prompts whose pass rates (4 rollouts each) form the value model's context."""
    value_model: str = "default"
    """The value model behind the 'value' prior."""
    history: tuple[int, ...] = (4, 8)
    """m of each 'history(m)' prior: m earlier rollouts of every batch and context prompt (docs/rl.md)."""
    rule_k_init: tuple[int, ...] = (2, 4)
    """k_init of the rollout-rule cells (k_max 4 k_init, budget RULE_BUDGET x k_init per prompt)."""
    seed: int = 0

    def __post_init__(self):
        for name in ("prompts", "pool", "repeats", "mc_rollouts", "context"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.seed, "seed", minimum=0)
        for k in self.group_sizes:
            check_positive_int(k, "group size", minimum=2)
            if k > self.pool:
                raise ValueError(f"group size {k} exceeds pool ({self.pool}): a repeat draws k of the pool's rollouts")
        for n in self.snapshots:
            check_positive_int(n, "snapshot rollouts", minimum=0)
        for m in self.history:
            check_positive_int(m, "history rollouts")
        for k in self.rule_k_init:
            check_positive_int(k, "rule k_init", minimum=2)
            if 4 * k > self.pool:
                raise ValueError(f"rule k_init {k} needs a pool of k_max = 4 k_init = {4 * k} rollouts; pool is {self.pool}")
        check_number(self.noise_sd, "noise_sd", minimum=0.0)
        check_number(self.hallucination, "hallucination", minimum=0.0, maximum=1.0)


@dataclass
class Pool:
    """Pre-drawn rollouts of one snapshot and what every estimate needs from them.

    rewards : (M, n) 0/1 rewards; row : (M, n) index of each rollout's distinct (prompt, response) row;
    gram : (U, U) inner products of the rows' score gradients; along : (U,) their inner products with g;
    g_sq : ||g||^2; pass_rate : (M,) exact p(x); optimal : (M,) the variance-optimal constant baseline
    b*(x) (see :data:`OPTIMAL`) from the pool.
    """

    rewards: np.ndarray
    row: np.ndarray
    gram: np.ndarray
    along: np.ndarray
    g_sq: float
    pass_rate: np.ndarray
    optimal: np.ndarray


def flat_grad(policy: Policy) -> torch.Tensor:
    """The policy's parameter gradients as one float64 vector (zeros where a gradient is None)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).double()
                      for p in policy.parameters()])


def exact_gradient(policy: Policy, problems: list[Problem], temperature: float) -> tuple[np.ndarray, torch.Tensor]:
    """Exact pass rates ``(M,)`` and the exact gradient of their mean ``(P,)`` (float64)."""
    prompts = torch.from_numpy(encode_prompts([p.prompt for p in problems]))  # (M, T_prompt)
    answers, mask = answer_tokens([p.answer for p in problems])  # (M, T)
    policy.zero_grad()
    p = torch.exp(log_pass_rates(policy, prompts, answers, mask, temperature))  # (M,)
    p.mean().backward()
    return p.detach().double().numpy(), flat_grad(policy)


def sequence_logprobs(policy: Policy, prompts: torch.Tensor, responses: torch.Tensor, mask: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Sum of the tempered token log-probabilities of each response, ``(B,)``, with gradient."""
    logits = policy.response_logits(prompts, responses) / temperature  # (B, T, V)
    return (token_logprobs(logits, responses) * mask).sum(1)  # (B,)


def score_gradients(policy: Policy, prompts: torch.Tensor, responses: torch.Tensor, mask: torch.Tensor,
                    temperature: float, on_row: Callable[[], None] | None = None) -> np.ndarray:
    """Per-row score gradients grad log pi(y|x), ``(B, P)`` float32: one backward pass per row.

    (``torch.func.vmap`` does not batch through ``nn.GRU``; a loop of backward passes is exact and, at about
    7 ms a row, cheap next to the rest of the benchmark.)
    """
    out = np.zeros((len(prompts), sum(p.numel() for p in policy.parameters())), dtype=np.float32)
    for i in range(len(prompts)):
        policy.zero_grad()
        sequence_logprobs(policy, prompts[i : i + 1], responses[i : i + 1], mask[i : i + 1], temperature).sum().backward()
        out[i] = flat_grad(policy).float().numpy()
        if on_row is not None:
            on_row()
    return out


def gram(scores: np.ndarray, g: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """``S S^T`` ``(U, U)`` and ``S g`` ``(U,)`` accumulated in float64 over column chunks of ``S`` (U, P)."""
    n = scores.shape[0]
    out, along = np.zeros((n, n)), np.zeros(n)
    for lo in range(0, scores.shape[1], chunk):
        block = scores[:, lo : lo + chunk].astype(np.float64)  # (U, c)
        out += block @ block.T
        along += block @ g[lo : lo + chunk]
    return out, along


def draw_pool(policy: Policy, problems: list[Problem], n: int, generator: torch.Generator, temperature: float):
    """``n`` rollouts per prompt: rewards ``(M, n)``, distinct-row index ``(M, n)`` and the distinct rows
    (prompt tokens, responses, masks) as tensors."""
    prompt_set = PromptSet.from_problems(problems)
    m = len(problems)
    responses, mask, rewards = Sampler(policy, prompt_set, generator, temperature).draw(np.arange(m), np.full(m, n))
    which = np.repeat(np.arange(m), n)  # (M n,)
    key = np.concatenate([which[:, None], np.where(mask.numpy(), responses.numpy(), -1)], axis=1)  # (M n, 1 + T)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    rows = torch.from_numpy(first)
    return (rewards.reshape(m, n), inverse.reshape(m, n),
            (prompt_set.tokens[torch.from_numpy(which[first])], responses[rows], mask[rows]))


def build_pool(policy: Policy, problems: list[Problem], n: int, generator: torch.Generator, temperature: float,
               on_row: Callable[[], None] | None = None) -> tuple[Pool, torch.Tensor]:
    """The snapshot's :class:`Pool` and its exact gradient ``(P,)``."""
    pass_rate, g = exact_gradient(policy, problems, temperature)
    rewards, row, (prompts, responses, mask) = draw_pool(policy, problems, n, generator, temperature)
    scores = score_gradients(policy, prompts, responses, mask, temperature, on_row)
    gram_matrix, along = gram(scores, g.numpy())
    return Pool(rewards, row, gram_matrix, along, float(g @ g), pass_rate, optimal_baseline(rewards, row, gram_matrix)), g


def optimal_baseline(rewards: np.ndarray, row: np.ndarray, gram_matrix: np.ndarray) -> np.ndarray:
    """b*(x) = sum_i r_i ||s_i||^2 / sum_i ||s_i||^2 over each prompt's pool rollouts, ``(M,)``."""
    norms = np.diag(gram_matrix)[row]  # (M, n)
    return (rewards * norms).sum(1) / np.maximum(norms.sum(1), 1e-300)


def monte_carlo_check(policy: Policy, problems: list[Problem], g: torch.Tensor, n: int,
                      generator: torch.Generator, temperature: float, pass_rate: np.ndarray) -> dict:
    """Cosine and relative squared error of an ``n``-rollout estimate with the exact p(x) as baseline against
    the exact gradient, and the agreement of its two halves (the convergence check)."""
    m = len(problems)
    prompt_set = PromptSet.from_problems(problems)
    responses, mask, rewards = Sampler(policy, prompt_set, generator, temperature).draw(np.arange(m), np.full(m, n))
    which = np.repeat(np.arange(m), n)
    half = np.tile(np.arange(n) < n // 2, m)  # (M n,) first half of each prompt's rollouts
    weight = torch.from_numpy((rewards - pass_rate[which]) / (m * n))  # (M n,)
    halves = []
    for part in (half, ~half):
        policy.zero_grad()
        idx = torch.from_numpy(np.flatnonzero(part))
        for lo in range(0, len(idx), 4096):
            at = idx[lo : lo + 4096]
            logp = sequence_logprobs(policy, prompt_set.tokens[torch.from_numpy(which)[at]], responses[at], mask[at],
                                     temperature)
            (logp.double() * weight[at]).sum().backward()
        halves.append(2 * flat_grad(policy))  # each half alone, on the full estimate's scale
    full = (halves[0] + halves[1]) / 2

    def cos(a, b):
        return float(a @ b / (a.norm() * b.norm()))

    return {"rollouts_per_prompt": n, "cosine": cos(full, g), "rel_sq_error": float((full - g).square().sum() / (g @ g)),
            "half_cosine": cos(halves[0], halves[1]),
            "half_rel_sq_error": float((halves[0] - g).square().sum() / (g @ g))}


def subsets(m: int, n: int, k: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """``(R, M, k)`` positions: for every repeat and prompt, k of the pool's n rollouts without replacement."""
    return np.argsort(rng.random((repeats, m, n)), axis=2)[..., :k]


def advantages(name: str, rewards: np.ndarray, prior: Prior | None, pool: Pool) -> np.ndarray:
    """One repeat's advantages ``(M k,)`` (dropped rollouts at 0) for rewards ``(M, k)``."""
    m, k = rewards.shape
    flat = rewards.reshape(-1)
    if name in (FLOOR, OPTIMAL):
        return flat - np.repeat(pool.pass_rate if name == FLOOR else pool.optimal, k)
    if name == NO_BASELINE:
        return flat.astype(float)
    group = np.repeat(np.arange(m), k)
    out = compute(name, flat, group, prior=prior)
    return np.where(out.keep, out.advantage, 0.0)


def cell_stats(weights: np.ndarray, pool: Pool) -> dict:
    """Error figures of R estimates g_hat_r = sum_u w_ru s_u, weights ``(R, U)``, against g.

    ``rel_sq_error``: mean ||a g_hat - g||^2 / ||g||^2 with one scale a for all R (the least-squares one),
    so a constant factor (a mean's (k-1)/k shrink, a fixed std division) costs nothing (``_se``: its standard
    error over the repeats; all estimators of a k share the repeats, so their differences are paired); ``rel_sq_error_raw``
    the same at a = 1. ``mean_rel_sq_error``: ||mean_r g_hat - g||^2 / ||g||^2 minus its own sampling noise,
    the squared bias plus the pool's finite-sample error (the floor's value measures the latter).
    """
    r = len(weights)
    dot, sq, scale, error = projections(weights, pool)
    mean_w = weights.mean(0)  # (U,)
    mean_sq, mean_dot = float(mean_w @ pool.gram @ mean_w), float(mean_w @ pool.along)
    spread = float(np.mean(sq - 2 * weights @ pool.gram @ mean_w + mean_sq))  # mean ||g_hat_r - mean||^2
    cosine = np.where(sq > 0, dot / np.sqrt(np.maximum(sq, 1e-300) * pool.g_sq), 0.0)
    return {
        "cosine": float(cosine.mean()), "cosine_se": float(cosine.std(ddof=1) / np.sqrt(r)),
        "scale": scale, "rel_sq_error": float(error.mean()), "rel_sq_error_se": float(error.std(ddof=1) / np.sqrt(r)),
        "rel_sq_error_raw": float(np.mean(sq - 2 * dot + pool.g_sq) / pool.g_sq),
        "mean_along": mean_dot / pool.g_sq,
        "mean_rel_sq_error": (mean_sq - 2 * mean_dot + pool.g_sq - spread / (r - 1)) / pool.g_sq,
    }


def projections(weights: np.ndarray, pool: Pool) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """For R estimates with row weights ``(R, U)``: <g_hat_r, g> ``(R,)``, ||g_hat_r||^2 ``(R,)``, the cell's
    least-squares scale a, and each repeat's ||a g_hat_r - g||^2 / ||g||^2 ``(R,)`` (see :func:`cell_stats`)."""
    dot = weights @ pool.along  # (R,)
    sq = np.einsum("ru,ru->r", weights @ pool.gram, weights)  # (R,)
    scale = float(dot.sum() / sq.sum()) if sq.sum() > 0 else 0.0
    return dot, sq, scale, (scale**2 * sq - 2 * scale * dot + pool.g_sq) / pool.g_sq


def paired_ratio(a: np.ndarray, b: np.ndarray) -> dict:
    """mean(a) / mean(b) of paired per-repeat errors ``(R,)``, with a 95% interval by the delta method:
    r +- 1.96 sd(a - r b) / (sqrt(R) mean(b))."""
    ratio = float(a.mean() / b.mean())
    half = 1.96 * float(np.std(a - ratio * b, ddof=1) / (np.sqrt(len(a)) * b.mean()))
    return {"ratio": ratio, "low": ratio - half, "high": ratio + half}


def estimate_cell(name: str, prior: Prior | None, pool: Pool, picks: np.ndarray) -> dict | None:
    """Figures of one (estimator, prior, k) over the repeats ``picks`` ``(R, M, k)``; None if undefined."""
    out = repeat_weights(name, prior, pool, picks)
    return None if out is None else cell_stats(out[0], pool)


def repeat_weights(name: str, prior: Prior | None, pool: Pool,
                   picks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each repeat's estimate as row weights ``(R, U)`` (g_hat_r = sum_u w_ru s_u) and which of its groups carry
    no gradient (every advantage 0) ``(R, M)``, for the repeats ``picks`` ``(R, M, k)``; None if undefined."""
    r, m, k = picks.shape
    rows = np.take_along_axis(np.broadcast_to(pool.row, (r, *pool.row.shape)), picks, axis=2)  # (R, M, k)
    rewards = np.take_along_axis(np.broadcast_to(pool.rewards, (r, *pool.rewards.shape)), picks, axis=2)
    weights, silent = np.zeros((r, len(pool.along))), np.zeros((r, m), dtype=bool)
    try:
        for i in range(r):
            adv = advantages(name, rewards[i], prior, pool)
            weights[i] = np.bincount(rows[i].reshape(-1), weights=adv / (m * k), minlength=len(pool.along))
            silent[i] = np.all(adv.reshape(m, k) == 0, axis=1)
    except UndefinedError:
        return None
    return weights, silent


def value_prior(policy: Policy, batch: list[Problem], context: list[Problem], settings: GradientSettings,
                generator: torch.Generator, temperature: float) -> Prior:
    """The value model's prior on the batch (unseen prompts) from text and a context of other prompts'
    pass rates (4 rollouts each) under the snapshot policy: the fresh-prompt situation."""
    from v05.rl.sampler import pass_rates
    from v05.value import ValueModel
    from v05.value.prior import OutcomeHistory, ValueModelPrior

    model = ValueModel.load(settings.value_model)
    rates = pass_rates(Sampler(policy, PromptSet.from_problems(context), generator, temperature), 4)
    history = OutcomeHistory()
    history.add(0, [p.prompt for p in context], rates, np.full(len(context), 4))
    source = ValueModelPrior(model, context_size=len(context), history_steps=1, history_block=1)
    return source.predict(history, 1, [p.prompt for p in batch])


def history_prior(policy: Policy, batch: list[Problem], context: list[Problem], m: int,
                  generator: torch.Generator, temperature: float) -> Prior:
    """The history prior (:class:`v05.value.HistoryPrior`) on the batch from an outcome history of ``m`` earlier
    rollouts of every batch and context prompt under the snapshot policy itself (one 'last epoch' without
    policy drift: the bench has no earlier checkpoint per snapshot; docs/rl.md)."""
    from v05.rl.sampler import pass_rates
    from v05.value import HistoryPrior
    from v05.value.prior import OutcomeHistory

    seen = batch + context
    rates = pass_rates(Sampler(policy, PromptSet.from_problems(seen), generator, temperature), m)
    history = OutcomeHistory()
    history.add(0, [p.prompt for p in seen], rates, np.full(len(seen), m))
    return HistoryPrior().predict(history, 1, [p.prompt for p in batch])


def priors(pass_rate: np.ndarray, value: Prior, settings: GradientSettings,
           rng: np.random.Generator) -> dict[str, Prior]:
    """The priors fused by V0.5 forms (mean and variance, row j for prompt j), by name."""
    noisy = noise_prior(pass_rate, settings.noise_sd, rng)
    halluc = hallucination_prior(pass_rate, settings.hallucination, rng)
    return {"value": value, "oracle": Prior(pass_rate, np.zeros_like(pass_rate)),
            f"noisy({settings.noise_sd:g})": Prior(noisy.prior, noisy.prior_var),
            f"halluc({settings.hallucination:g})": Prior(halluc.prior, halluc.prior_var)}


OSLA_ESTIMATOR = "v05_eb"
"""The estimator fused on OSLA-allocated rollouts (the default, ``v05``)."""


def _osla_configs():
    from v05.budget import OslaConfig

    return tuple(OslaConfig(k_init=k, k_max=4 * k, rule=rule, max_rounds=cap)
                 for k in (2, 4) for rule, cap in (("paper", None), ("eb", None), ("paper", 2)))


OSLA_CONFIGS = _osla_configs()
"""OSLA settings measured (k_max = 4 k_init; paper and eb rules; the paper rule also with max_rounds = 2)."""


RULE_BUDGET = 2
"""The rule cells' plan budget: RULE_BUDGET x k_init rollouts per prompt on average (at most)."""
RULE_ESTIMATORS = (("v05_eb", "value"), ("rloo", None))
"""(estimator, prior name) fused on every rule's rollouts; their fixed-k cells are the comparators."""


def rule_configs(k: int) -> list[tuple[str, str, dict]]:
    """(label, registered rule name, options) of every rule at k_init = k (k_max = 4 k; docs/rl.md)."""
    return [("osla paper", "osla", {"rule": "paper", "k_init": k, "k_max": 4 * k, "max_rounds": None}),
            ("osla eb", "osla", {"rule": "eb", "k_init": k, "k_max": 4 * k, "max_rounds": None}),
            ("reinforce_ada balanced", "reinforce_ada", {"exit": "balanced", "round_size": k, "n": k, "k_max": 4 * k,
                                                         "max_rounds": 3}),
            ("reinforce_ada positive_focused", "reinforce_ada", {"exit": "positive_focused", "round_size": k, "n": k,
                                                                 "k_max": 4 * k, "max_rounds": 3}),
            ("knapsack", "knapsack", {"k_min": k, "k_max": 4 * k}),
            ("cures", "cures", {"k_min": k, "k_max": 4 * k}),
            ("dynamic", "dynamic", {"k": k, "k_max": 4 * k, "max_rounds": 3})]


COMPARED = (("eb_batch", None), ("js_loo", None), ("rloo", None))
"""Value-free rows the value-model prior's V0.5 is compared with (paired ratios), besides the history priors."""


def paired_ratios(errors: dict[tuple[str, str | None, int], np.ndarray], history: list[str],
                  ks: tuple[int, ...]) -> list[dict]:
    """V0.5 with the value-model prior against the value-free rows and the history priors, and v05_eb_reg(_loo)
    against it, at every k: :func:`paired_ratio` of the per-repeat errors ``errors[(estimator, prior, k)]``."""
    pairs = [(("v05_eb", "value"), other) for other in COMPARED + tuple(("v05_eb", h) for h in history)]
    pairs += [((reg, "value"), ("v05_eb", "value")) for reg in ("v05_eb_reg", "v05_eb_reg_loo")]
    out = []
    for k in ks:
        for a, b in pairs:
            if (*a, k) in errors and (*b, k) in errors:
                out.append({"k": k, "estimator": a[0], "prior": a[1], "against": b[0], "against_prior": b[1],
                            **paired_ratio(errors[(*a, k)], errors[(*b, k)])})
    return out


def interpolate(ks: list[int], err: list[float], se: list[float], x: float) -> tuple[float, float]:
    """Fixed-k error at ``x`` mean rollouts per prompt on a log-log line through the neighbouring k cells
    (extrapolated from the nearest segment outside them), and its relative standard error interpolated the
    same way."""
    lk, le = np.log(ks), np.log(err)
    i = int(np.clip(np.searchsorted(lk, np.log(x)) - 1, 0, len(ks) - 2))
    t = (np.log(x) - lk[i]) / (lk[i + 1] - lk[i])
    rel = [s / e for s, e in zip(se, err)]
    return float(np.exp(le[i] + t * (le[i + 1] - le[i]))), float(rel[i] + t * (rel[i + 1] - rel[i]))


def against_fixed(cell: dict, fixed: dict[tuple[str, str | None], dict[int, dict]]) -> dict:
    """A rule cell's error over each fixed-k estimator's at the same mean rollouts per prompt, with a 95%
    interval by the delta method on the log ratio (independent draws)."""
    out = {}
    for name, prior in RULE_ESTIMATORS:
        by_k = fixed[(name, prior)]
        ks = sorted(by_k)
        ref, ref_rel = interpolate(ks, [by_k[k]["rel_sq_error"] for k in ks], [by_k[k]["rel_sq_error_se"] for k in ks],
                                   cell["rollouts_per_prompt"])
        ratio = cell["rel_sq_error"] / ref
        half = 1.96 * float(np.hypot(cell["rel_sq_error_se"] / cell["rel_sq_error"], ref_rel))
        out[name] = {"fixed_err": ref, "ratio": ratio, "low": float(ratio * np.exp(-half)),
                     "high": float(ratio * np.exp(half))}
    return out


def rows_to_run(prior_names: list[str]) -> list[tuple[str, str | None]]:
    """(estimator, prior name or None) for every row of the report: the floor, the optimal constant baseline,
    no baseline, then every
    registered estimator (those fusing a prior once per prior)."""
    out = [(FLOOR, None), (OPTIMAL, None), (NO_BASELINE, None)]
    for name in list_estimators():
        out += [(name, p) for p in prior_names] if get_estimator(name).uses_prior else [(name, None)]
    return out


def measure_snapshot(label: str, policy: Policy, batch: list[Problem], context: list[Problem],
                     settings: GradientSettings, temperature: float, tick: Callable[[str, int], None]) -> dict:
    """Every cell of one snapshot (see the module docstring)."""
    policy.requires_grad_(True)
    gen = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, 7])
    tick(f"{label}: score gradients", 0)
    pool, g = build_pool(policy, batch, settings.pool, gen, temperature, on_row=lambda: tick("", 0))
    check = monte_carlo_check(policy, batch, g, settings.mc_rollouts, gen, temperature, pool.pass_rate)
    with torch.no_grad():
        value = value_prior(policy, batch, context, settings, gen, temperature)
        history_gen = torch.Generator().manual_seed(int(np.random.default_rng([settings.seed, 11]).integers(2**62)))
        histories = {f"history({m})": history_prior(policy, batch, context, m, history_gen, temperature)
                     for m in settings.history}  # their own stream: the other cells do not move
    prior_by_name = priors(pool.pass_rate, value, settings, rng)
    cells, errors = [], {}
    for k in settings.group_sizes:
        picks = subsets(len(batch), settings.pool, k, settings.repeats, rng)
        for name, prior_name in rows_to_run(list(prior_by_name)) + [("v05_eb", h) for h in histories]:
            prior = prior_by_name[prior_name] if prior_name in prior_by_name else histories.get(prior_name)
            out = repeat_weights(name, prior, pool, picks)
            stats = None if out is None else cell_stats(out[0], pool)
            if out is not None:
                errors[(name, prior_name, k)] = projections(out[0], pool)[3]
            cells.append({"snapshot": label, "estimator": name, "prior": prior_name, "k": k, **(stats or {})})
            tick(f"{label}: k={k} {name}", 1)
    for config in OSLA_CONFIGS:
        for prior_name in ("value", "oracle"):
            stats = osla_cell(OSLA_ESTIMATOR, prior_by_name[prior_name], pool, config, settings.repeats, rng)
            cells.append({"snapshot": label, "estimator": OSLA_ESTIMATOR, "prior": prior_name, "k": config.k_init,
                          "osla": {"k_init": config.k_init, "k_max": config.k_max, "rule": config.rule,
                                   "max_rounds": config.max_rounds}, **stats})
            tick(f"{label}: OSLA {config.rule} k_init={config.k_init}", 1)
    floor = {c["k"]: c for c in cells if c["estimator"] == FLOOR}
    for c in cells:
        if "rel_sq_error" in c and "osla" not in c:
            c["excess"] = c["rel_sq_error"] - floor[c["k"]]["rel_sq_error"]
            c["bias_sq"] = c["mean_rel_sq_error"] - floor[c["k"]]["mean_rel_sq_error"]
    cells += rule_cells(label, prior_by_name["value"], pool, cells, settings, tick)
    prior_mse = {n: float(np.mean((p.mean - pool.pass_rate) ** 2)) for n, p in {**prior_by_name, **histories}.items()}
    return {"label": label, "mean_pass_rate": float(pool.pass_rate.mean()), "grad_norm": float(np.sqrt(pool.g_sq)),
            "distinct_rows": int(len(pool.along)), "monte_carlo": check, "prior_mse": prior_mse, "cells": cells,
            "ratios": paired_ratios(errors, list(histories), settings.group_sizes)}


def rule_cells(label: str, value: Prior, pool: Pool, cells: list[dict], settings: GradientSettings,
               tick: Callable[[str, int], None]) -> list[dict]:
    """Every registered rule's cells (:func:`rule_configs`, each estimator of :data:`RULE_ESTIMATORS`) at the
    plan budget RULE_BUDGET x k_init per prompt, planned on the value-model prior, with their ratios to the
    fixed-k cells at the same mean rollouts (their own random stream)."""
    from v05.budget import make_rule

    rng = np.random.default_rng([settings.seed, 19])
    fixed = {(n, p): {c["k"]: c for c in cells if c["estimator"] == n and c["prior"] == p and "osla" not in c}
             for n, p in RULE_ESTIMATORS}
    out = []
    for k in settings.rule_k_init:
        budget = RULE_BUDGET * k * len(pool.rewards)
        for rule_label, rule_name, options in rule_configs(k):
            rule = make_rule(rule_name, options)
            for name, prior_name in RULE_ESTIMATORS:
                stats = plan_cell(name, value if prior_name else None, value, pool, rule, settings.repeats, rng, budget)
                cell = {"snapshot": label, "estimator": name, "prior": prior_name, "k": k,
                        "rule": {"label": rule_label, "name": rule_name, "options": options,
                                 "budget_per_prompt": RULE_BUDGET * k}, **stats}
                out.append({**cell, "against_fixed": against_fixed(cell, fixed)})
                tick(f"{label}: {rule_label} k_init={k} {name}", 1)
    return out


def snapshot_config(settings: GradientSettings, rollouts: int):
    """The GRPO k=4 run (demo task and warm-up) whose weights after ``rollouts`` are a snapshot."""
    from v05.rl.config import TrainConfig

    return TrainConfig().with_settings({"method.estimator": "grpo", "method.group_size": 4, "threads": 1,
                                        "seed": settings.seed, "total_rollouts": max(rollouts, 128),
                                        "eval.every_rollouts": max(rollouts, 128)})


def snapshot_policy(settings: GradientSettings, rollouts: int, work_dir: Path, cache: Path) -> Policy:
    """The warm-up (``rollouts == 0``) or a GRPO k=4 run's policy after ``rollouts`` (trained here, or resumed
    from ``work_dir`` if an earlier call finished it)."""
    from v05.rl.checkpoint import load_checkpoint
    from v05.rl.loop import train
    from v05.rl.setup import warm_start
    from v05.rl.task import ArithmeticTask

    cfg = snapshot_config(settings, rollouts)
    policy = Policy(cfg.policy)
    if rollouts == 0:
        task = ArithmeticTask.build(cfg.task.n_train, cfg.task.n_eval, cfg.task.seed)
        policy.load_state_dict(warm_start(cfg, task, cache))
        return policy
    run_dir = work_dir / f"grpo_k4_{rollouts}"
    train(cfg, run_dir, warmup_cache=cache, tensorboard=False)
    tensors = load_checkpoint(run_dir).tensors
    policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")})
    return policy


def run(settings: GradientSettings, out: Path, *, cache: Path | None = None,
        tick: Callable[[str, int], None] = lambda text, n: None) -> dict:
    """Measure every snapshot; returns the report (``write`` in :mod:`v05.bench.gradient_report` saves it).

    ``tick(text, n)`` reports progress: ``n`` cells done (0 for a step inside one).
    """
    from v05.rl.task import ArithmeticTask

    torch.set_num_threads(1)
    out = Path(out)
    cache = Path(cache) if cache is not None else out / "warmup"
    cfg = snapshot_config(settings, 0)
    task = ArithmeticTask.build(cfg.task.n_train, cfg.task.n_eval, cfg.task.seed)
    order = np.random.default_rng([settings.seed, 3]).permutation(len(task.train))
    batch = [task.train[i] for i in order[: settings.prompts]]
    context = [task.train[i] for i in order[settings.prompts : settings.prompts + settings.context]]
    snapshots = []
    for rollouts in settings.snapshots:
        label = "warm-up" if rollouts == 0 else f"GRPO k=4 after {rollouts} rollouts"
        tick(f"{label}: policy", 0)
        policy = snapshot_policy(settings, rollouts, out / "runs", cache)
        snapshots.append(measure_snapshot(label, policy, batch, context, settings, cfg.temperature, tick))
    return {"settings": {**asdict(settings), "temperature": cfg.temperature}, "snapshots": snapshots}


def cell_count(settings: GradientSettings) -> int:
    """Cells the run measures (the progress bar's total)."""
    per_snapshot = len(settings.group_sizes) * len(rows_to_run(["value", "oracle", "noisy", "halluc"]))
    per_snapshot += len(settings.group_sizes) * len(settings.history)
    rules = len(settings.rule_k_init) * len(rule_configs(2)) * len(RULE_ESTIMATORS)
    return len(settings.snapshots) * (per_snapshot + 2 * len(OSLA_CONFIGS) + rules)


def osla_weights(name: str, prior: Prior, pool: Pool, config, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One OSLA repeat (no budget): the estimate's row weights ``(U,)`` and the rollouts drawn (:func:`plan_weights`)."""
    weights, drawn, _ = plan_weights(name, prior, prior, pool, config, rng)
    return weights, drawn


def plan_weights(name: str, prior: Prior | None, plan_prior: Prior, pool: Pool, rule, rng: np.random.Generator,
                 budget: int | None = None) -> tuple[np.ndarray, int, int]:
    """One repeat of a :class:`v05.budget.RolloutPlan` under ``rule`` (an ``OslaConfig`` or a registered rule),
    planned on ``plan_prior`` without its variance: the planner draws each prompt's rollouts in a random order
    from its pool; returns the estimate's row weights ``(U,)`` (each prompt's rollouts in the update averaged,
    then the prompts: an unbiased estimate of g's form), the rollouts drawn and the generation rounds.

    Under ``reinforce_ada`` the engine's rule is mirrored (``v05/rl/step.py``): the estimator runs on each
    prompt's whole drawn pool and only ``ReinforceAda.update_rows`` enter the update.
    """
    from v05.budget import RolloutPlan
    from v05.budget.reinforce_ada import ReinforceAda

    m, n = pool.rewards.shape
    order = np.argsort(rng.random((m, n)), axis=1)  # (M, n)
    taken = np.zeros(m, dtype=np.int64)
    plan, rows = RolloutPlan(plan_prior.without_var(), rule, budget), []  # the rule without the variance floor
    while round_ := plan.request():
        picks = [order[j, taken[j] : taken[j] + c] for j, c in round_]
        taken[round_.index] += round_.n
        plan.record(np.repeat(round_.index, round_.n),
                    np.concatenate([pool.rewards[j, p] for (j, _), p in zip(round_, picks)]))
        rows.append(np.concatenate([pool.row[j, p] for (j, _), p in zip(round_, picks)]))
    alloc = plan.result()
    out = compute(name, alloc.rewards, alloc.group, prior=prior)
    if isinstance(rule, ReinforceAda):
        used = rule.update_rows(alloc)  # (N,)
        per_prompt = np.bincount(alloc.group[used], minlength=m)
        adv = np.where(out.keep & used, out.advantage, 0.0) / (m * np.maximum(per_prompt[alloc.group], 1))
    else:
        adv = np.where(out.keep, out.advantage, 0.0) / (m * alloc.counts[alloc.group])
    weights = np.bincount(np.concatenate(rows), weights=adv, minlength=len(pool.along))
    return weights, int(alloc.counts.sum()), alloc.rounds


def osla_cell(name: str, prior: Prior, pool: Pool, config, repeats: int, rng: np.random.Generator) -> dict:
    """Figures of ``repeats`` OSLA-allocated estimates (no budget), and their mean rollouts per prompt
    (:func:`plan_cell` planned on the fused prior; the OSLA cells record no rounds, as before the rules)."""
    cell = plan_cell(name, prior, prior, pool, config, repeats, rng, None)
    del cell["rounds"]
    return cell


def plan_cell(name: str, prior: Prior | None, plan_prior: Prior, pool: Pool, rule, repeats: int,
              rng: np.random.Generator, budget: int | None) -> dict:
    """Figures of ``repeats`` plan-allocated estimates (:func:`plan_weights`), their mean rollouts per prompt and
    mean generation rounds."""
    results = [plan_weights(name, prior, plan_prior, pool, rule, rng, budget) for _ in range(repeats)]
    weights = np.stack([w for w, _, _ in results])  # (R, U)
    return {**cell_stats(weights, pool),
            "rollouts_per_prompt": float(np.mean([n for _, n, _ in results])) / len(pool.rewards),
            "rounds": float(np.mean([r for _, _, r in results]))}
