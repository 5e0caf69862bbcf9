"""``v05 eval``: test-time scaling of one policy, and how well its verifier (and the value model) predict
correctness.

For every problem the policy samples ``n_max`` solutions once; the scaling curves then come from that
pool (``v05.evaluate.voting``): for N = 1, 2, 4, ..., n_max, majority vote, Best-of-N by the verifier's P(Yes),
verifier-weighted majority vote and pass@N (the ceiling), each with a bootstrap 95% interval over problems.
The headline is the smallest N at which weighted voting (and Best-of-N) reaches majority voting's accuracy
at n_max. Everything a user can get wrong (the policy, the problems file, the settings, the value model) is
checked by :func:`prepare` before anything is sampled.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from v05._validation import check_number, check_positive_int
from v05.evaluate.grading import grade
from v05.evaluate.policies import SMOLLM2, ChatPolicy, EnginePolicy, Samples, load_policy
from v05.evaluate.problems import BUILTIN, builtin_problems, load_problems_file
from v05.evaluate.quality import quality, value_predictions
from v05.evaluate.voting import Pool, bootstrap_ci, samples_to_match, scaling_curves
from v05.rl.config import TaskConfig
from v05.tasks.math_reward import MathProblem

NO_VALUE_MODEL = "none"


@dataclass(frozen=True)
class EvalSettings:
    """What ``v05 eval`` runs (every field checked when built)."""

    policy: str
    """Engine run or checkpoint folder, transformers model folder, .gguf file, or 'smollm2'."""
    problems: str = BUILTIN
    """'builtin' (the built-in task's held-out set) or a JSONL problems file."""
    n_max: int = 64
    """Solutions sampled per problem; the curves run N = 1, 2, 4, ... up to it."""
    limit: int | None = None
    """Use only the first this many problems."""
    seed: int = 0
    """Seed of the sampling, the subsets and the bootstrap."""
    temperature: float | None = None
    """Sampling temperature (None: the engine run's own, 1.0 for chat models)."""
    max_new_tokens: int = 512
    """Chat models: most tokens per solution."""
    batch_size: int = 16
    """Chat models: sequences per generation call (and per verification batch)."""
    value_model: str = "default"
    """Value model scored beside the verifier ('none' to skip)."""
    max_subsets: int = 256
    """Subsets of N solutions per problem averaged at each N (all of them when there are fewer)."""
    n_boot: int = 2000
    """Bootstrap resamples of the problems for each interval."""

    def __post_init__(self):
        if not isinstance(self.policy, str) or not self.policy:
            raise TypeError(f"policy must be a path or '{SMOLLM2}'; got {self.policy!r}")
        check_positive_int(self.n_max, "n_max")
        if self.limit is not None:
            check_positive_int(self.limit, "limit")
        check_positive_int(self.seed, "seed", minimum=0)
        if self.temperature is not None:
            check_number(self.temperature, "temperature", minimum=0.0, min_open=True)
        for name in ("max_new_tokens", "batch_size", "max_subsets", "n_boot"):
            check_positive_int(getattr(self, name), name)


@dataclass(frozen=True)
class Prepared:
    """A checked evaluation, ready to sample."""

    settings: EvalSettings
    policy: EnginePolicy | ChatPolicy
    problems: list[MathProblem]
    value_model: object | None


def prepare(settings: EvalSettings) -> Prepared:
    """Load the policy, the problems and the value model; raise on anything wrong before any sampling.

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        A missing or unloadable policy or problems file (named), a problems file with a bad row, an engine
        checkpoint asked to solve a problems file (it answers the built-in task only), an unknown value model.
    """
    if settings.problems != BUILTIN:
        problems = load_problems_file(settings.problems, settings.limit)  # cheap: check the file before the model
    policy = load_policy(settings.policy)
    if settings.problems == BUILTIN:
        task = policy.task if isinstance(policy, EnginePolicy) else TaskConfig()
        problems = builtin_problems(task, limit=settings.limit)
        if isinstance(policy, ChatPolicy):
            problems = [MathProblem(p.prompt_id, f"Compute {p.prompt.rstrip('=')}.", p.answer) for p in problems]
    elif isinstance(policy, EnginePolicy):
        raise ValueError(f"--problems {settings.problems}: an engine checkpoint answers the built-in task only "
                         f"(its vocabulary is digits, + and -); use --problems {BUILTIN}")
    value_model = None
    if settings.value_model != NO_VALUE_MODEL:
        from v05.value import ValueModel

        value_model = ValueModel.load(settings.value_model)
    return Prepared(settings, policy, problems, value_model)


def run_eval(prepared: Prepared, out, *, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Sample, grade, verify and score; write ``eval.json``, ``eval.md``, ``scaling.png`` and
    ``reliability.png`` under ``out``; return the report.

    ``progress(phase, done, total)`` is called as the sampling ('sample') and the verification ('verify') go.
    """
    s, policy, problems = prepared.settings, prepared.policy, prepared.problems
    tell = progress or (lambda *a: None)
    seconds = {}
    start = time.perf_counter()
    samples = policy.sample(problems, s.n_max, seed=s.seed, temperature=s.temperature, max_new_tokens=s.max_new_tokens,
                            batch_size=s.batch_size, progress=lambda d: tell("sample", d, len(problems)))
    seconds["sample"] = time.perf_counter() - start
    start = time.perf_counter()
    graded = grade(samples.text, [p.answer for p in problems], policy.grader)
    seconds["grade"] = time.perf_counter() - start
    start = time.perf_counter()
    score = policy.verify(problems, samples, progress=lambda d: tell("verify", d, len(problems) * s.n_max),
                          batch_size=s.batch_size)
    seconds["verify"] = time.perf_counter() - start
    start = time.perf_counter()
    value = value_of(prepared, graded.correct)
    seconds["value_model"] = time.perf_counter() - start
    report = summarise(prepared, samples, graded.answer, graded.correct, score, value)
    report["seconds"] = seconds
    write_report(report, out)
    return report


def value_of(prepared: Prepared, correct: np.ndarray) -> np.ndarray | str | None:
    """The value model's cross-fitted prediction per problem (P,), the reason it has none, or None (skipped)."""
    if prepared.value_model is None:
        return None
    try:
        return value_predictions(prepared.value_model, [p.prompt for p in prepared.problems], correct.mean(1),
                                 correct.shape[1], seed=prepared.settings.seed)
    except ValueError as e:
        return str(e)


def summarise(prepared: Prepared, samples: Samples, answer: np.ndarray, correct: np.ndarray,
              score: np.ndarray | None, value) -> dict:
    """The report of one evaluation (everything in ``eval.json``)."""
    s, policy, problems = prepared.settings, prepared.policy, prepared.problems
    pool = Pool(answer, correct, score)
    curves = scaling_curves(pool, max_subsets=s.max_subsets, n_boot=s.n_boot, seed=s.seed)
    pass_rate = correct.mean(1)
    lo, hi = bootstrap_ci(pass_rate, n_boot=s.n_boot, seed=s.seed)
    report = {
        "settings": asdict(s),
        "policy": {"kind": policy.kind, "name": policy.name, "has_verifier": score is not None,
                   "step": getattr(policy, "step", None)},
        "problems": {"source": s.problems, "n": len(problems), "grader": policy.grader},
        "n": curves["n"], "strategies": curves["strategies"],
        "pass@1": {"mean": float(pass_rate.mean()), "lo": lo, "hi": hi},
        "headline": headline(curves, s.n_max),
        "verifier": None if score is None else quality(score, correct),
        "value_model": _value_report(value, correct),
        "per_problem": [{"prompt_id": p.prompt_id, "answer": p.answer, "pass_rate": float(r),
                         "p_yes_mean": None if score is None else float(score[i].mean()),
                         "value": float(value[i]) if isinstance(value, np.ndarray) else None,
                         "example": samples.text[i][0][:200]}
                        for i, (p, r) in enumerate(zip(problems, pass_rate))],
        "pool": {"answer": answer.tolist(), "correct": correct.astype(int).tolist(),
                 "score": None if score is None else np.round(score, 6).tolist()},
    }
    return report


def headline(curves: dict, n_max: int) -> dict:
    """The smallest N at which each verifier strategy reaches majority voting's accuracy at ``n_max``, and the
    compute-efficiency ratio n_max / N (None when it never does, or without a verifier). When majority voting
    at ``n_max`` solves nothing there is nothing to reach: both are None and ``note`` says so."""
    reference = curves["strategies"]["majority"]["mean"][-1]
    out = {"reference": "majority", "reference_n": n_max, "reference_accuracy": reference}
    if reference <= 0:
        out["note"] = f"majority vote at N = {n_max} solves no problem: no efficiency headline"
    for name in ("weighted", "best_of_n"):
        if name in curves["strategies"]:
            n = samples_to_match(curves, name) if reference > 0 else None
            out[name] = {"n": n, "ratio": None if n is None else n_max / n}
    return out


def _value_report(value, correct: np.ndarray) -> dict | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"skipped": value}
    return quality(np.repeat(value[:, None], correct.shape[1], axis=1), correct)


def write_report(report: dict, out) -> None:
    """``eval.json``, ``eval.md`` and the two plots under ``out``."""
    from v05.evaluate.report import markdown, plot_reliability, plot_scaling

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=1))
    (out / "eval.md").write_text(markdown(report))
    plot_scaling(report, out / "scaling.png")
    plot_reliability(report, out / "reliability.png")
