"""RL^V on the built-in task: GRPO, GRPO + verifier, V0.5 and V0.5 + verifier at equal rollouts, several seeds.

Every run starts from the same warm-up policy and prompt stream (per seed) and spends the same number of
rollouts; each budget is its own run (a run with a larger budget follows the smaller one's trajectory up to
it). Each final checkpoint is then evaluated by ``v05 eval``'s machinery (:mod:`v05.evaluate.run`): n_max
solutions to each held-out problem, the scaling curves, the verifier's and the value model's quality. The
comparison (:mod:`v05.bench.rlv_report`) asks: does the verifier loss hurt pass@1, does weighted voting beat
majority voting, and at which N does it reach majority voting's accuracy at n_max (the efficiency headline).
The conditions are fixed in :class:`RlvSettings` and ``docs/rlv.md`` before any result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from v05._validation import check_positive_int
from v05.bench.demo import Method, uncapped
from v05.bench.workers import run_in_workers
from v05.rl.config import TrainConfig
from v05.rl.loop import train
from v05.rl.setup import warm_start
from v05.rl.task import ArithmeticTask



GRPO = {"method.estimator": "grpo", "method.group_size": 4}
V05 = {"method.estimator": "v05", "method.allocation": "osla", "osla.k_init": 4, "osla.k_max": 16}
VERIFIER = {"verifier.enabled": True}
METHOD_LIST = (
    Method("GRPO", "grpo", GRPO, "tab:blue"),
    Method("GRPO + verifier", "grpo_rlv", {**GRPO, **VERIFIER}, "tab:red"),
    Method("V0.5", "v05", V05, "tab:cyan"),
    Method("V0.5 + verifier", "v05_rlv", {**V05, **VERIFIER}, "tab:orange"),
)
METHODS = {m.label: m for m in METHOD_LIST}
BASE_OF = {"GRPO + verifier": "GRPO", "V0.5 + verifier": "V0.5"}
"""Each verifier method and the same method without the verifier loss."""


@dataclass(frozen=True)
class RlvSettings:
    """The comparison's conditions (``docs/rlv.md`` states why each was chosen)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """RL seeds; every method runs every seed at every budget."""
    budgets: tuple[int, ...] = (40000,)
    """Rollouts per run (the demo's budget); a larger budget is a separate set of runs (``--budgets``)."""
    n_max: int = 64
    """Solutions sampled per held-out problem at evaluation."""
    eval_every_rollouts: int = 8000
    """Held-out accuracy during training (4 samples per problem, the engine's own evaluation)."""
    workers: int = 1
    """Runs trained and evaluated in parallel (one thread each)."""
    value_model: str = "default"
    """V0.5's prior, and the value model scored beside the verifier."""
    max_subsets: int = 256
    n_boot: int = 1000

    @classmethod
    def quick(cls) -> "RlvSettings":
        """A CI-sized comparison (minutes): 2 seeds, one small budget, n_max 8."""
        return cls(seeds=(0, 1), budgets=(4000,), n_max=8, eval_every_rollouts=2000, n_boot=200)

    def __post_init__(self):
        for name in ("seeds", "budgets"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"{name} == {values!r}, must hold at least one value, without repeats")
        for seed in self.seeds:
            check_positive_int(seed, "seed", minimum=0)
        for budget in self.budgets:
            check_positive_int(budget, "budget")
        for name in ("n_max", "eval_every_rollouts", "workers", "max_subsets", "n_boot"):
            check_positive_int(getattr(self, name), name)

    def jobs(self) -> list[tuple[Method, int, int, TrainConfig]]:
        """(method, budget, seed, config) of every run, each config checked now."""
        shared = {"eval.every_rollouts": self.eval_every_rollouts, "threads": 1, "prior.value_model": self.value_model}
        return [(m, b, s, TrainConfig().with_settings({**shared, **m.settings, **uncapped(m.settings), "total_rollouts": b,
                                                       "seed": s}))
                for b in self.budgets for s in self.seeds for m in METHOD_LIST]


def run_name(method: Method, budget: int, seed: int) -> str:
    return f"{method.slug}_r{budget}_seed{seed}"


def _run_one(args) -> dict:
    """Worker: train one run (or reload it when finished), evaluate its final checkpoint, summarise both."""
    from v05.evaluate.run import EvalSettings, prepare, run_eval

    label, budget, seed, cfg, out, settings, messages = args
    name = run_name(METHODS[label], budget, seed)
    result = train(cfg, out / "runs" / name, warmup_cache=out / "warmup", tensorboard=False,
                   on_record=lambda r: messages.put((name, min(r["rollouts"], budget))))
    evaluation = EvalSettings(policy=str(out / "runs" / name), n_max=settings.n_max, seed=seed,
                              value_model=settings.value_model, max_subsets=settings.max_subsets, n_boot=settings.n_boot)
    report = run_eval(prepare(evaluation), out / "evals" / name)
    steps = [r for r in result.records if r["step"] > 0]
    verifier = [r for r in steps if "verifier/loss" in r]
    return {"method": label, "budget": budget, "seed": seed, "name": name, "rollouts": result.rollouts,
            "train_curve": result.curve, "train_final_accuracy": result.final_accuracy,
            "verifier_train_curve": [[r["rollouts"], r["verifier/loss"], r["verifier/accuracy"]] for r in verifier],
            "cpu_seconds": sum(v for r in steps for k, v in r.items() if k.endswith("_cpu_s")),
            "eval": {k: report[k] for k in ("n", "strategies", "pass@1", "headline", "verifier", "value_model")},
            "eval_seconds": report["seconds"]}


def run_rlv(out, settings: RlvSettings = RlvSettings(), *, progress=None) -> dict:
    """Train and evaluate every (method, budget, seed) under ``out``; returns the report (written by
    :func:`v05.bench.rlv_report.write_report`).

    ``progress(name, rollouts)`` is called as runs advance. Finished runs in ``out`` are reloaded, not trained
    again (their evaluation is redone: it is cheap and deterministic).
    """
    from v05.value import ValueModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = settings.jobs()
    first = jobs[0][3]
    task = ArithmeticTask.build(first.task.n_train, first.task.n_eval, first.task.seed)
    ValueModel.load(settings.value_model).text_difficulty([p.prompt for p in task.train + task.eval])  # fill the cache
    warm_start(first, task, out / "warmup")
    runs = run_in_workers(_run_one, [(m.label, b, s, cfg, out, settings) for m, b, s, cfg in jobs], settings.workers, progress)
    return {"settings": {**asdict(settings), "seeds": list(settings.seeds), "budgets": list(settings.budgets)},
            "methods": {m.label: m.settings for m in METHOD_LIST}, "runs": runs}

