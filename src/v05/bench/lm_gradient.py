"""``v05 bench gradient --policy smollm2``: every estimator's gradient error on a real pretrained LM (issue 20).

The built-in task's benchmark (:mod:`v05.bench.gradient`) measures against the exact gradient; a language
model has none, so this one measures against an unbiased reference from disjoint rollouts (docs/rl.md,
"Gradient error on SmolLM2"):

- **Prompts.** :func:`candidates` lists arithmetic questions of four kinds (single-digit sums and products,
  two-digit plus one-digit, two-digit sums); each is answered ``screen`` times and the batch is the
  ``prompts`` candidates at evenly spaced ranks of those pass rates (an easy-to-hard spread fixed before any
  estimator is run); the other candidates, with their screening pass rates, are the value model's context.
- **Pool.** ``pool`` completions per batch prompt (temperature ``temperature``, at most ``max_new_tokens``
  tokens), graded by math-verify. The first half of each prompt's pool (A) feeds the estimators (k-subsets
  without replacement, as in the built-in benchmark); the second half (B) is the reference.
- **Gradient sketch.** Each completion's score gradient grad log pi(y|x) of every weight matrix W of the
  transformer blocks (all linear maps: 106M of SmolLM2's 135M parameters; the tied embedding and the norms
  are left out) is sketched as G_W A_W^T, A_W a fixed Gaussian (rank x d_in) matrix with entries N(0, 1/rank):
  the gradient of a LoRA adapter's B factor at B = 0 with A_W as its A factor. The sketch P is one fixed
  linear map with E[P^T P] = I, so every estimator (a weighted sum of score gradients) is sketched by the same
  map and every squared error and inner product below is an unbiased estimate (over P) of its full-gradient
  value: the comparison between estimators is preserved, not only their order.
- **Reference.** With U_A and U_B the leave-one-out (RLOO) estimates from all of A and all of B (each an
  unbiased estimate of g), E<g_hat, U_B> = <E g_hat, g> for any g_hat drawn from A (independent of B), and
  <U_A, U_B> is an unbiased estimate of ||g||^2, so every figure of :func:`v05.bench.gradient.cell_stats`
  (computed from the Gram matrix of the sketches, with ``along`` = S U_B and ``g_sq`` = <U_A, U_B>) is
  unbiased before its ratios, with no noise to subtract. The baseline b = p(x) and the oracle prior use B's
  pass rate (independent of A). Intervals: 95% percentile bootstrap over prompts (each prompt's pool, both
  halves, resampled together), with the repeats fixed, so the reference's own noise is inside them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from v05._validation import check_number, check_positive_int
from v05.baselines import Prior
from v05.bench.gradient import FLOOR, NO_BASELINE, OPTIMAL, Pool, cell_stats, optimal_baseline, repeat_weights, subsets

QUESTION = "What is {expr}? Put the final answer in \\boxed{{}}."
ROWS = ((FLOOR, None), (OPTIMAL, None), (NO_BASELINE, None), ("grpo", None), ("rloo", None), ("mean", None),
        ("v05_eb", "value"), ("v05_eb", "oracle"), ("v05_paper", "value"), ("v05_paper", "oracle"),
        ("eb_batch", None), ("js_loo", None), ("v05_eb", "history"), ("v05_eb_reg", "value"))
"""(estimator, prior) of every row: b = p(x) (the floor), the variance-optimal constant, no baseline, GRPO, RLOO,
the group mean, and V0.5 (``v05_eb`` and the paper form) with the value model's prior and the oracle prior (the
registered rows of issue 20); then the value-free rows of issue 18, added afterwards: ``eb_batch``, ``js_loo``,
V0.5 with the history prior (each prompt's screening completions as its past outcomes) and ``v05_eb_reg`` (EB
toward a line of the group means on the value prior fitted on the batch)."""
VALUE_FREE = (("eb_batch", None), ("js_loo", None), ("rloo", None), ("v05_eb", "history"))
"""The rows that need no value model, each compared with V0.5 on the value model's prior."""


@dataclass(frozen=True)
class LMGradientSettings:
    """Sizes of ``v05 bench gradient --policy smollm2`` (defaults: the registered run, docs/rl.md)."""

    prompts: int = 24
    """Batch prompts (chosen from the candidates by their screening pass rates)."""
    pool: int = 24
    """Completions per batch prompt: the first half for the estimators, the second half for the reference."""
    group_sizes: tuple[int, ...] = (2, 4, 8)
    """k, completions per prompt of each estimate (at most pool / 2)."""
    repeats: int = 200
    """Estimates (k-subsets of each prompt's half A) per (estimator, prior, k)."""
    candidates: int = 64
    """Candidate prompts screened (a multiple of the four kinds)."""
    screen: int = 4
    """Completions per candidate in the screening (their pass rates are also the value model's context)."""
    rank: int = 2
    """Rows of each weight matrix's Gaussian sketch (sketch size: rank x the blocks' summed output widths)."""
    max_new_tokens: int = 32
    temperature: float = 0.7
    batch: int = 16
    """Sequences per forward/backward pass of the sketch (memory, not results)."""
    bootstrap: int = 1000
    """Bootstrap resamples of the prompts for the intervals."""
    value_model: str = "default"
    seed: int = 0

    def __post_init__(self):
        for name in ("prompts", "pool", "repeats", "candidates", "screen", "rank", "max_new_tokens", "batch",
                     "bootstrap"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.seed, "seed", minimum=0)
        check_number(self.temperature, "temperature", minimum=0.0, min_open=True)
        if self.pool < 4 or self.pool % 2:
            raise ValueError(f"pool == {self.pool}: must be an even number >= 4 (two halves of at least 2)")
        if self.candidates % 4:
            raise ValueError(f"candidates == {self.candidates}: must be a multiple of 4 (four kinds of question)")
        if self.prompts > self.candidates - 2:
            raise ValueError(f"prompts ({self.prompts}) must leave at least 2 of the {self.candidates} candidates "
                             "as the value model's context")
        for k in self.group_sizes:
            check_positive_int(k, "group size", minimum=2)
            if k > self.pool // 2:
                raise ValueError(f"group size {k} exceeds half the pool ({self.pool // 2}): a repeat draws k of "
                                 "the estimators' half")

    @classmethod
    def quick(cls, **changes) -> "LMGradientSettings":
        """A few-minute run for tests and a first look: 4 prompts x 8 completions of at most 8 tokens."""
        return replace(cls(prompts=4, pool=8, group_sizes=(2, 4), repeats=20, candidates=8, screen=2, rank=1,
                           max_new_tokens=8, bootstrap=100), **changes)


def candidates(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (question, answer) pairs, n/4 of each kind, interleaved: single-digit sums, single-digit products,
    two-digit plus one-digit, two-digit sums (distinct within a kind)."""
    rng = np.random.default_rng([seed, 20])
    kinds = [(lambda: (rng.integers(0, 10), rng.integers(0, 10)), "{} + {}", lambda a, b: a + b),
             (lambda: (rng.integers(2, 10), rng.integers(2, 10)), "{} \\times {}", lambda a, b: a * b),
             (lambda: (rng.integers(10, 100), rng.integers(1, 10)), "{} + {}", lambda a, b: a + b),
             (lambda: (rng.integers(10, 100), rng.integers(10, 100)), "{} + {}", lambda a, b: a + b)]
    per_kind = []
    for draw, form, value in kinds:
        seen: dict = {}
        while len(seen) < n // 4:
            a, b = (int(v) for v in draw())
            seen.setdefault((a, b), (QUESTION.format(expr=form.format(a, b)), str(value(a, b))))
        per_kind.append(list(seen.values()))
    return [q for group in zip(*per_kind) for q in group]


def choose_batch(rates: np.ndarray, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the batch (``m`` candidates at evenly spaced ranks of ``rates``, ties in a seeded random
    order) and of the rest (the context)."""
    order = np.random.default_rng([seed, 21]).permutation(len(rates))
    ranked = order[np.argsort(rates[order], kind="stable")]
    picks = ranked[np.round(np.linspace(0, len(rates) - 1, m)).astype(int)]
    return np.sort(picks), np.setdiff1d(np.arange(len(rates)), picks)


# ---------------------------------------------------------------- the model side (torch)


def prompt_ids(tokenizer, questions: list[str]) -> list[list[int]]:
    """Chat-formatted prompt token ids (the tokenizer's template, generation prompt appended)."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
             for q in questions]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def sample(model, tokenizer, prompts: list[list[int]], n: int, settings: LMGradientSettings, seed: int,
           gen_batch: int = 64, on_batch: Callable[[int], None] | None = None) -> list[list[int]]:
    """``n`` sampled completions per prompt (prompt-major), each cut after its first end token."""
    import torch

    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    pad = tokenizer.pad_token_id
    todo = [p for p in prompts for _ in range(n)]
    out: list[list[int]] = []
    for i, lo in enumerate(range(0, len(todo), gen_batch)):
        chunk = todo[lo : lo + gen_batch]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        torch.manual_seed(seed * 100_003 + i)
        with torch.no_grad():
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=settings.max_new_tokens,
                                 do_sample=True, temperature=settings.temperature, top_k=0, top_p=1.0,
                                 pad_token_id=pad, eos_token_id=eos)
        for row in gen[:, width:].tolist():
            out.append(row[: row.index(eos) + 1] if eos in row else row)
        if on_batch is not None:
            on_batch(len(chunk))
    return out


def grade(tokenizer, completions: list[list[int]], answers: list[str], reward=None) -> np.ndarray:
    """0/1 rewards of the decoded completions by ``reward(texts, answers)``, default math-verify
    (:func:`v05.tasks.math_reward.math_reward`: the last ``\\boxed{}`` or final expression)."""
    from v05.tasks.math_reward import math_reward

    return np.asarray((reward or math_reward)(tokenizer.batch_decode(completions, skip_special_tokens=True), answers))


def sketched_linears(model) -> list:
    """The weight matrices sketched: every ``nn.Linear`` inside the transformer blocks, in module order."""
    import torch

    base = model.base_model
    return [m for m in base.modules() if isinstance(m, torch.nn.Linear)]


def sketch_size(model, rank: int) -> int:
    return rank * sum(m.out_features for m in sketched_linears(model))


def score_sketches(model, prompts: list[list[int]], completions: list[list[int]], settings: LMGradientSettings,
                   seed: int) -> np.ndarray:
    """Sketched score gradients ``(B, D)`` float32 of one batch: row i is the concatenation over the sketched
    matrices W of (d/dW sum_t log pi_T(y_it | x_i, y_i,<t)) A_W^T (see the module docstring).

    One batched forward and backward pass (weights frozen, gradient through the activations only): a linear
    map's weight gradient for row i is sum_t delta_it x_it^T, so hooks collect sum_t delta_it (A_W x_it)^T per
    row without forming any weight gradient.
    """
    import torch

    linears = sketched_linears(model)
    gen = torch.Generator().manual_seed(seed)
    sketch = [torch.randn(settings.rank, m.in_features, generator=gen) / settings.rank**0.5 for m in linears]
    b = len(prompts)
    acc = [torch.zeros(b, m.out_features, settings.rank) for m in linears]
    handles = []

    def hook(j):
        def forward(module, inputs, output):
            xa = inputs[0].detach() @ sketch[j].T  # (B, T, r)

            def backward(delta):
                acc[j].add_(torch.einsum("bto,btr->bor", delta, xa))

            output.register_hook(backward)
        return forward

    seqs = [p + c for p, c in zip(prompts, completions)]
    width = max(len(s) for s in seqs)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    rows = torch.tensor([i for i, c in enumerate(completions) for _ in c])
    cols = torch.tensor([len(p) - 1 + t for p, c in zip(prompts, completions) for t in range(len(c))])
    targets = torch.tensor([t for c in completions for t in c])
    requires = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        handles = [m.register_forward_hook(hook(j)) for j, m in enumerate(linears)]
        embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        hidden = model.base_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # (B, T, d)
        logits = model.get_output_embeddings()(hidden[rows, cols]) / settings.temperature  # (tokens, V)
        logp = torch.log_softmax(logits.float(), -1).gather(1, targets[:, None]).sum()
        logp.backward()
    finally:
        for h in handles:
            h.remove()
        for p, r in zip(model.parameters(), requires):
            p.requires_grad_(r)
    return torch.cat([a.reshape(b, -1) for a in acc], 1).numpy().astype(np.float32)


# ---------------------------------------------------------------- the figures (numpy)


def distinct_rows(completions: list[list[int]], m: int, n: int) -> np.ndarray:
    """``(M, n)`` index of each completion's distinct (prompt, completion) row (rows never cross prompts)."""
    seen: dict = {}
    return np.array([seen.setdefault((i // n, tuple(c)), len(seen)) for i, c in enumerate(completions)]).reshape(m, n)


def loo_weights(rewards: np.ndarray, row: np.ndarray, size: int) -> np.ndarray:
    """Per-prompt RLOO estimates of g as row weights ``(M, U)``: prompt x's part of
    1/M sum_x 1/n sum_i (r_i - mean of the other n - 1) s_i over the given rollouts ``(M, n)``."""
    m, n = rewards.shape
    adv = rewards - (rewards.sum(1, keepdims=True) - rewards) / (n - 1)  # (M, n)
    out = np.zeros((m, size))
    for x in range(m):
        np.add.at(out[x], row[x], adv[x] / (m * n))
    return out


@dataclass
class Reference:
    """What the figures need from the pool: the estimators' :class:`Pool` (half A, with ``along`` and
    ``g_sq`` from the reference), and the per-prompt parts for the bootstrap.

    prompt_of_row : (U,) prompt of each distinct row; ref : (M, U) per-prompt RLOO weights of half B;
    own : (M, U) the same for half A; cross : (M, M) <own_x, ref_y>.
    """

    pool: Pool
    prompt_of_row: np.ndarray
    ref: np.ndarray
    own: np.ndarray
    cross: np.ndarray


def reference_pool(rewards: np.ndarray, row: np.ndarray, gram: np.ndarray) -> Reference:
    """Split each prompt's pool ``(M, n)`` into halves A (estimators) and B (reference); see the module docstring."""
    m, n = rewards.shape
    h = n // 2
    size = len(gram)
    own, ref = loo_weights(rewards[:, :h], row[:, :h], size), loo_weights(rewards[:, h:], row[:, h:], size)
    ref_total = ref.sum(0)
    cross = own @ gram @ ref.T  # (M, M)
    p_ref = rewards[:, h:].mean(1)
    pool = Pool(rewards[:, :h], row[:, :h], gram, gram @ ref_total, float(cross.sum()), p_ref,
                optimal_baseline(rewards[:, :h], row[:, :h], gram))
    prompt_of_row = np.zeros(size, dtype=np.int64)
    for x in range(m):
        prompt_of_row[row[x]] = x
    return Reference(pool, prompt_of_row, ref, own, cross)


def reference_quality(r: Reference) -> dict:
    """How precise the reference is: ||g||^2's estimate, the halves' cosine and U_B's own relative noise."""
    g = r.pool.gram
    own, ref = r.own.sum(0), r.ref.sum(0)
    own_sq, ref_sq = float(own @ g @ own), float(ref @ g @ ref)
    g_sq = r.pool.g_sq
    return {"g_sq": g_sq, "half_cosine": g_sq / np.sqrt(own_sq * ref_sq),
            "reference_rel_noise": (ref_sq - g_sq) / g_sq if g_sq > 0 else None,
            "estimators_half_rel_noise": (own_sq - g_sq) / g_sq if g_sq > 0 else None}


def bootstrap_parts(weights: np.ndarray, r: Reference) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt blocks of the repeats' squared norms and reference products, ``(R, M, M)`` each:
    sq[r, x, y] = <g_hat_rx, g_hat_ry> and dot[r, x, y] = <g_hat_rx, U_B,y>."""
    m = len(r.cross)
    onehot = np.eye(m)[r.prompt_of_row]  # (U, M)
    per = weights[:, None, :] * onehot.T[None]  # (R, M, U): each repeat's weights split by prompt
    pg = per @ r.pool.gram  # (R, M, U)
    return (pg * weights[:, None, :]) @ onehot, pg @ r.ref.T


def bootstrap_errors(sq: np.ndarray, dot: np.ndarray, cross: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Best-scale relative squared error ``(B,)`` of the cell for each prompt resample ``counts`` ``(B, M)``:
    1 - mean_r(dot)^2 / (mean_r(sq) ||g||^2), the resample's figures (cf. ``cell_stats``); NaN where the
    resample's estimate of ||g||^2 is not positive or every estimate is 0 (left out of the intervals)."""
    s = np.einsum("bx,xy,by->b", counts, sq.mean(0), counts)
    d = np.einsum("bx,xy,by->b", counts, dot.mean(0), counts)
    g = np.einsum("bx,xy,by->b", counts, cross, counts)
    ok = (g > 0) & (s > 0)
    return np.where(ok, 1.0 - d**2 / np.where(ok, s * g, 1.0), np.nan)


def noise_to_signal(err):
    """err / (1 - err): for an estimate c g + noise, Var(noise) / (c^2 ||g||^2) (additive over noise sources,
    and inverse to the rollouts for the floor); NaN where err >= 1 (no signal measured)."""
    err = np.asarray(err, dtype=float)
    return np.where(err < 1, err / np.where(err < 1, 1.0 - err, 1.0), np.nan)


def interval(values: np.ndarray) -> list[float]:
    """The 95% percentile interval of finite bootstrap values."""
    v = values[np.isfinite(values)]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else [float("nan")] * 2


def measure(rewards: np.ndarray, row: np.ndarray, gram: np.ndarray, priors: dict, settings: LMGradientSettings,
            tick: Callable[[str, int], None] = lambda text, n: None) -> dict:
    """Every cell (every row of :data:`ROWS` at every k) from the pool's rewards, rows and Gram matrix."""
    ref = reference_pool(rewards, row, gram)
    if not ref.pool.g_sq > 0:
        raise ValueError(f"the reference's estimate of ||g||^2 is {ref.pool.g_sq:.3g}, not positive: the pool is too "
                         "small (or too uniform in reward) to measure against; use more prompts or a larger pool")
    m, h = ref.pool.rewards.shape
    rng = np.random.default_rng([settings.seed, 7])
    counts = rng.multinomial(m, np.full(m, 1 / m), size=settings.bootstrap).astype(float)  # (B, M)
    g_boot = np.einsum("bx,xy,by->b", counts, ref.cross, counts)
    quality = {**reference_quality(ref), "g_sq_ci": interval(g_boot), "g_sq_nonpositive_share": float(np.mean(g_boot <= 0))}
    norms = np.diag(gram)[row]  # (M, n) squared score norms
    quality["score_sq_norm"] = {"correct": float(norms[rewards == 1].mean()) if (rewards == 1).any() else None,
                                "wrong": float(norms[rewards == 0].mean()) if (rewards == 0).any() else None}
    cells = []
    for k in settings.group_sizes:
        picks = subsets(m, h, k, settings.repeats, rng)
        boots = {}
        for name, prior_name in ROWS:
            out = repeat_weights(name, priors[prior_name] if prior_name else None, ref.pool, picks)
            cell = {"estimator": name, "prior": prior_name, "k": k}
            if out is not None:
                weights, silent = out
                boots[(name, prior_name)] = bootstrap_errors(*bootstrap_parts(weights, ref), ref.cross, counts)
                cell.update(cell_stats(weights, ref.pool), silent_share=float(silent.mean()))
                cell["nsr"] = float(noise_to_signal(cell["rel_sq_error"]))
                cell["rel_sq_error_ci"] = interval(boots[(name, prior_name)])
                cell["nsr_ci"] = interval(noise_to_signal(boots[(name, prior_name)]))
            cells.append(cell)
            tick(f"k={k} {name} {prior_name or ''}", 1)
        floor = boots[(FLOOR, None)]
        for c in cells:
            if c["k"] == k and "rel_sq_error" in c:
                mine = boots[(c["estimator"], c["prior"])]
                floor_cell = next(d for d in cells if d["k"] == k and d["estimator"] == FLOOR)
                c["excess"] = c["rel_sq_error"] - floor_cell["rel_sq_error"]
                c["excess_ci"] = interval(mine - floor)
                c["excess_nsr"] = c["nsr"] - floor_cell["nsr"]
                c["excess_nsr_ci"] = interval(noise_to_signal(mine) - noise_to_signal(floor))
        for c in cells:  # against RLOO (the group mean rescaled): share of its excess removed, rollouts worth
            if c["k"] == k and "rel_sq_error" in c and c["estimator"] not in (FLOOR, "rloo"):
                mine, rloo = boots[(c["estimator"], c["prior"])], boots[("rloo", None)]
                cell_rloo = next(d for d in cells if d["k"] == k and d["estimator"] == "rloo")
                c["excess_removed_vs_rloo"] = 1 - c["excess"] / cell_rloo["excess"]
                c["excess_removed_vs_rloo_ci"] = interval(1 - (mine - floor) / (rloo - floor))
                c["rollouts_vs_rloo"] = cell_rloo["nsr"] / c["nsr"]
                c["rollouts_vs_rloo_ci"] = interval(noise_to_signal(rloo) / noise_to_signal(mine))
        value = boots[("v05_eb", "value")]
        value_cell = next(d for d in cells if d["k"] == k and (d["estimator"], d["prior"]) == ("v05_eb", "value"))
        for c in cells:  # what the value model adds: the rollouts a value-free row needs for V0.5's noise
            if c["k"] == k and (c["estimator"], c["prior"]) in VALUE_FREE:
                free = boots[(c["estimator"], c["prior"])]
                c["value_prior_worth"] = c["nsr"] / value_cell["nsr"]
                c["value_prior_worth_ci"] = interval(noise_to_signal(free) / noise_to_signal(value))
    return {"reference": quality, "cells": cells}


def cell_count(settings: LMGradientSettings) -> int:
    return len(settings.group_sizes) * len(ROWS)


# ---------------------------------------------------------------- the run (cached, resumable)


def load_policy(name: str):
    """``(model, tokenizer)`` of the policy measured: ``smollm2`` (offline, :func:`v05.pretrained.load_smollm2`)."""
    from v05.pretrained import load_smollm2

    if name != "smollm2":
        raise ValueError(f"policy {name!r}: only 'smollm2' is a language-model policy")
    return load_smollm2()


ANALYSIS_ONLY = ("group_sizes", "repeats", "bootstrap", "value_model")
"""Settings that only the analysis reads: changing them reuses the cached pool and sketches."""


def _cached_json(path: Path, make: Callable[[], dict], key: dict, on_hit: Callable[[], None]) -> dict:
    """``make()``'s result, saved to ``path``; a file made under other settings (``key``) is refused."""
    if path.is_file():
        data = json.loads(path.read_text())
        if data["key"] != key:
            raise ValueError(f"{path} was made with other settings ({data['key']}); use another --out")
        on_hit()
        return data
    data = {"key": key, **make()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return data


def value_prior(settings: LMGradientSettings, context: list[str], context_rates: np.ndarray,
                batch: list[str]) -> Prior:
    """The value model's prior on the batch from its texts and the context's screening pass rates."""
    from v05.value import ValueModel
    from v05.value.prior import OutcomeHistory, ValueModelPrior

    history = OutcomeHistory()
    history.add(0, context, context_rates, np.full(len(context), settings.screen))
    source = ValueModelPrior(ValueModel.load(settings.value_model), context_size=len(context), history_steps=1,
                             history_block=1)
    return source.predict(history, 1, batch)


def run(settings: LMGradientSettings, out: Path, *, policy=None, reward=None,
        tick: Callable[[str, int], None] = lambda text, n: None) -> dict:
    """Screen, draw the pool, sketch its score gradients and measure every cell; each stage is cached in
    ``out/cache`` (an interrupted run resumes; a rerun of the analysis reads the caches). ``policy``:
    ``(model, tokenizer)``, default SmolLM2; ``reward(texts, answers)``: default math-verify. ``tick(text, n)``:
    progress, ``n`` units done (see :func:`units`)."""
    import time

    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    cache = Path(out) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    model, tokenizer = policy if policy is not None else load_policy("smollm2")
    model.eval()
    key = {k: v for k, v in asdict(settings).items() if k not in ANALYSIS_ONLY}
    qs = candidates(settings.candidates, settings.seed)
    cand_ids = prompt_ids(tokenizer, [q for q, _ in qs])

    def screen():
        tick("screening candidates", 0)
        done = sample(model, tokenizer, cand_ids, settings.screen, settings, settings.seed, on_batch=lambda n: tick("", n))
        r = grade(tokenizer, done, [a for _, a in qs for _ in range(settings.screen)], reward).reshape(-1, settings.screen)
        return {"rates": r.mean(1).tolist()}

    rates = np.array(_cached_json(cache / "screen.json", screen, key,
                                  lambda: tick("", settings.candidates * settings.screen))["rates"])
    batch, context = choose_batch(rates, settings.prompts, settings.seed)
    ids = [cand_ids[i] for i in batch]
    answers = [qs[i][1] for i in batch]

    def draw():
        tick("sampling the pool", 0)
        done = sample(model, tokenizer, ids, settings.pool, settings, settings.seed + 1, on_batch=lambda n: tick("", n))
        r = grade(tokenizer, done, [a for a in answers for _ in range(settings.pool)], reward)
        return {"completions": done, "rewards": r.tolist()}

    pool = _cached_json(cache / "pool.json", draw, key, lambda: tick("", settings.prompts * settings.pool))
    m, n = len(batch), settings.pool
    completions = pool["completions"]
    rewards = np.array(pool["rewards"]).reshape(m, n)
    row = distinct_rows(completions, m, n)
    first = {}
    for i, u in enumerate(row.reshape(-1)):
        first.setdefault(int(u), i)
    firsts = [first[u] for u in range(len(first))]  # one completion per distinct row
    gram = sketch_gram(model, [ids[i // n] for i in firsts], [completions[i] for i in firsts], settings, cache, key, tick)
    tick("", m * n - len(firsts))  # repeated completions share one sketch
    tick("priors", 0)
    value = value_prior(settings, [qs[i][0] for i in context], rates[context], [qs[i][0] for i in batch])
    p_ref = rewards[:, n // 2 :].mean(1)
    priors = {"value": value, "oracle": Prior(p_ref, p_ref * (1 - p_ref) / (n // 2)),
              "history": screening_history_prior([q for q, _ in qs], rates, settings.screen, batch)}
    result = measure(rewards, row, gram, priors, settings, tick)
    lengths = [len(c) for c in completions]
    return {"settings": asdict(settings), "policy": "SmolLM2-135M-Instruct" if policy is None else type(model).__name__,
            "sketch_size": sketch_size(model, settings.rank),
            "batch": [{"question": qs[i][0], "answer": qs[i][1], "screen_rate": float(rates[i]),
                       "pool_rate_A": float(rewards[j, : n // 2].mean()), "pool_rate_B": float(p_ref[j]),
                       "value_prior": float(value.mean[j])} for j, i in enumerate(batch)],
            "context_prompts": len(context), "distinct_rows": len(firsts),
            "mean_completion_tokens": float(np.mean(lengths)), "truncated_share": float(np.mean([
                len(c) == settings.max_new_tokens and c[-1] != tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
                for c in completions])),
            "prior_mse": {name: float(np.mean((p.mean - p_ref) ** 2)) for name, p in priors.items()},
            "wall_seconds": time.perf_counter() - start, "loadavg": list(os.getloadavg()), **result}


def screening_history_prior(questions: list[str], rates: np.ndarray, screen: int, batch) -> Prior:
    """The history prior (:class:`v05.value.HistoryPrior`) of the batch prompts from every candidate's screening
    completions, taken as its past outcomes (one earlier 'epoch' of the same policy; no value model)."""
    from v05.value import HistoryPrior
    from v05.value.prior import OutcomeHistory

    history = OutcomeHistory()
    history.add(0, questions, np.asarray(rates, dtype=float), np.full(len(questions), screen))
    return HistoryPrior().predict(history, 1, [questions[i] for i in batch])


def sketch_gram(model, prompts, completions, settings: LMGradientSettings, cache: Path, key: dict,
                tick: Callable[[str, int], None]) -> np.ndarray:
    """The Gram matrix ``(U, U)`` of the distinct rows' sketches; the sketches are kept in ``cache`` batch by
    batch (an interrupted run resumes at the first missing batch)."""
    done_path, gram_path = cache / "sketch_done.json", cache / "gram.npy"
    if gram_path.is_file():
        tick("", len(prompts))
        return np.load(gram_path)
    u, d = len(prompts), sketch_size(model, settings.rank)
    path = cache / "sketches.f32"
    done = json.loads(done_path.read_text()) if done_path.is_file() else {"key": key, "rows": 0}
    if done["key"] != key:
        raise ValueError(f"{done_path} was made with other settings; use another --out")
    store = np.memmap(path, dtype=np.float32, mode="r+" if path.is_file() else "w+", shape=(u, d))
    tick("score-gradient sketches", 0)
    tick("", done["rows"])
    for lo in range(done["rows"], u, settings.batch):
        hi = min(lo + settings.batch, u)
        store[lo:hi] = score_sketches(model, prompts[lo:hi], completions[lo:hi], settings, settings.seed + 2)
        store.flush()
        done_path.write_text(json.dumps({"key": key, "rows": hi}))
        tick("", hi - lo)
    gram = np.zeros((u, u))
    for lo in range(0, d, 65536):
        block = np.asarray(store[:, lo : lo + 65536], dtype=np.float64)
        gram += block @ block.T
    np.save(gram_path, gram)
    return gram


def units(settings: LMGradientSettings) -> int:
    """Progress units of a run from scratch: completions sampled, sketches formed (at most one per completion),
    cells measured."""
    return settings.candidates * settings.screen + 2 * settings.prompts * settings.pool + cell_count(settings)


def reference_check(policy, problems, n: int, group_sizes, repeats: int, temperature: float, seed: int = 0) -> list[dict]:
    """The split-half reference against the exact gradient on the built-in task (GRU ``policy``, ``problems``):
    for each row of :data:`ROWS` without the value prior and each k, the error after the best scale of the same
    repeats (k-subsets of half A of an ``n``-rollout pool) measured against the exact g and against U_B."""
    import torch

    from v05.bench.gradient import build_pool, estimate_cell

    exact, _ = build_pool(policy, problems, n, torch.Generator().manual_seed(seed), temperature)
    ref = reference_pool(exact.rewards, exact.row, exact.gram)
    h = n // 2
    half = Pool(exact.rewards[:, :h], exact.row[:, :h], exact.gram, exact.along, exact.g_sq, exact.pass_rate,
                ref.pool.optimal)
    rng = np.random.default_rng([seed, 7])
    out = []
    for k in group_sizes:
        picks = subsets(len(problems), h, k, repeats, rng)
        for name, prior_name in ROWS:
            if prior_name not in (None, "oracle"):
                continue
            # b = p(x) and the oracle prior: the exact p against the exact g, half B's rate against U_B.
            pair = [estimate_cell(name, Prior(pool.pass_rate, np.zeros(len(problems))) if prior_name else None,
                                  pool, picks) for pool in (half, ref.pool)]
            out.append({"estimator": name, "prior": prior_name, "k": k, "exact": pair[0]["rel_sq_error"],
                        "reference": pair[1]["rel_sq_error"]})
    return out
