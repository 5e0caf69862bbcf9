"""GPU recipe: the V0.5 paper's setting with TRL. NOT RUN HERE: this project's machine has no GPU; only the dry
run below (configs, data and reward built and checked on CPU, no training) was run.

Setting (arXiv 2603.10848): Qwen3-4B-Instruct-2507 trained on DAPO-Math-17k-style prompts, k_init = 4
completions per prompt with OSLA top-ups to 16, evaluated mean@16 on AIME24, AIME25, AMC23, MATH500,
Minerva Math and OlympiadBench (the shared ``math_benchmarks`` folder) with math-verify.

Commands (one node, 8 x 80 GB GPUs, vLLM colocated with training; ``pip install "v05[trl]" vllm deepspeed``)::

    # the rival arms and ours, same data, same seed; compare at equal rollouts (v05/rollouts_per_prompt_mean
    # x prompts per step x steps)
    accelerate launch --num_processes 8 --config_file zero3.yaml examples/trl_gpu_qwen3_4b.py \\
        --arm v05_osla --train-data dapo_math_17k.parquet --out runs/qwen3_4b_v05_osla
    accelerate launch ... examples/trl_gpu_qwen3_4b.py --arm grpo16 ...      # GRPO, 16 per prompt
    accelerate launch ... examples/trl_gpu_qwen3_4b.py --arm v05_k4 ...      # V0.5 at a fixed k = 4
    # evaluation of a checkpoint (vLLM if installed, else transformers; 16 samples per problem)
    python examples/trl_gpu_qwen3_4b.py --eval-only runs/qwen3_4b_v05_osla/checkpoint-300 \\
        --benchmarks ../shared/data/math_benchmarks
    # what was run here: everything up to training, on CPU (the trainer is built when --model is a local folder)
    python examples/trl_gpu_qwen3_4b.py --dry-run --model ~/.cache/v05/models/smollm2-135m-instruct \
        --train-data <file> --out /tmp/dry

Smoke run (``make gpu-smoke``): one GPU, under 10 minutes, one verdict line (``TRL smoke: PASS (...)`` or
``FAIL (...)``, exit status 1 on FAIL). Arm ``v05_osla`` on built-in three-digit products (or ``--train-data``):
2 generation batches of 8 prompts x 4 completions with top-ups to 16, 16 optimizer steps of 4 rows, completions
of at most 512 tokens, vLLM colocated when installed. It checks that every step's loss and gradient norm are
finite, every generation batch logs a finite reward and the V0.5 metrics, the rollouts per prompt stay within
4..16, the estimator was defined, and the whole run (model loading included) took under 10 minutes::

    python examples/trl_gpu_qwen3_4b.py --smoke                  # Qwen3-4B: an 80 GB GPU (estimate, not run here)
    python examples/trl_gpu_qwen3_4b.py --smoke --model Qwen/Qwen3-0.6B      # a smaller GPU
    # on CPU: config, data and reward checked, nothing loaded; with --model <local folder> one tiny CPU step
    # is trained and judged by the same checks (the time limit aside)
    python examples/trl_gpu_qwen3_4b.py --smoke --dry-run [--model ~/.cache/v05/models/smollm2-135m-instruct]

Expected hardware, memory and time (estimates from the model size, not measurements): 8 x H100 80 GB.
Qwen3-4B in bf16 is 8 GB of weights; with Adam under ZeRO-3 the weights, gradients and optimiser states
(about 16 bytes per parameter, 64 GB) shard to about 8 GB per GPU; activations with gradient checkpointing
at 16 sequences of up to 8k tokens per micro-batch, and the colocated vLLM engine (``vllm_gpu_memory_utilization``
0.3, 24 GB for weights and KV cache), bring the peak to roughly 50-70 GB per GPU. One step of 128 prompts x 4
completions plus one top-up pass: generation dominates, a few minutes per step; 300 steps, on the order of a
day. Smaller GPUs: lower ``--per-device-batch`` and raise ``--steps-per-generation`` (the batch of prompts per
step stays the same).

What to watch (TensorBoard or W&B, next to TRL's own ``reward``, ``entropy``, ``clip_ratio/*``):
- ``v05/prior_mse`` should fall below the spread of the observed pass rates within a few dozen steps (the
  value model reads the run's own history); if it stays high the prior is useless and ``v05/weight_mean``
  stays near 1 (the fusion then falls back to the group mean: no harm, no gain).
- ``v05/rollouts_per_prompt_mean`` is the real cost per prompt (4 to 16); compare arms at equal total rollouts.
- ``v05/topup_rounds`` and ``v05/overhead_s`` against ``step_time``: the top-up pass costs a second generation
  call; V0.5's own work should be well under 1% of a GPU step.
- ``v05/zero_advantage_frac`` against GRPO's ``frac_reward_zero_std``: the signal V0.5 keeps from all-correct
  and all-wrong groups.
- ``completions/clipped_ratio``: truncated answers score 0 and bias every baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path

import numpy as np

from v05.tasks.math_reward import load_math_benchmark, math_reward

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench")
ARMS = {
    # name: (trainer, num_generations, V0.5 settings)
    "v05_osla": ("v05", 4, {"estimator": "v05", "k_max": 16, "max_rounds": 1}),
    "v05_k4": ("v05", 4, {"estimator": "v05"}),
    "grpo16": ("grpo", 16, {}),
    "grpo4": ("grpo", 4, {}),
}
SMOKE = {"prompts_per_step": 8, "per_device_batch": 4, "steps": 16, "max_completion_length": 512}
"""``--smoke`` on one GPU: 32 rows per generation batch in 8 micro-batches of 4, so 16 steps = 2 generation
batches (the first a cold start, the second reads the value model's history)."""
SMOKE_DRY = {"prompts_per_step": 2, "per_device_batch": 8, "steps": 1, "max_completion_length": 16}
"""``--smoke --dry-run`` with a local model folder: one generation batch and one step on CPU."""
SMOKE_SECONDS = 600.0
"""The smoke run's time limit on a GPU, model loading included."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arm", choices=sorted(ARMS), default="v05_osla")
    p.add_argument("--model", default="Qwen/Qwen3-4B-Instruct-2507")
    p.add_argument("--train-data", help="DAPO-Math-17k-style parquet/JSONL: a prompt (text or chat) and an answer")
    p.add_argument("--out", default="runs/qwen3_4b")
    p.add_argument("--prompts-per-step", type=int, default=128)
    p.add_argument("--per-device-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--max-completion-length", type=int, default=8192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="build and check everything on CPU, do not train "
                   "(with --smoke and a local --model: one tiny CPU step, judged like the smoke run)")
    p.add_argument("--smoke", action="store_true", help="a short one-GPU run (under 10 minutes) ending in one "
                   "verdict line, TRL smoke: PASS or FAIL; settings fixed (SMOKE), built-in problems by default")
    p.add_argument("--eval-only", help="a checkpoint folder to evaluate on the six benchmarks")
    p.add_argument("--benchmarks", default="../shared/data/math_benchmarks")
    p.add_argument("--eval-samples", type=int, default=16)
    return p.parse_args(argv)


def problem_text(prompt) -> str:
    """The problem of a DAPO-Math-17k prompt (its 'Answer: $Answer' instructions removed), or the text as is."""
    text = prompt[-1]["content"] if isinstance(prompt, list) else str(prompt)
    match = re.search(r"\n\n(.*)\n\nRemember to put your answer", text, flags=re.S)
    return match.group(1).strip() if match else text.strip()


def load_prompts(path: str):
    """Rows {prompt: [user message asking for \\boxed{}], answer} from a DAPO-Math-17k-style file."""
    from datasets import load_dataset

    kind = "parquet" if str(path).endswith(".parquet") else "json"
    raw = load_dataset(kind, data_files=str(path), split="train")

    def convert(row):
        answer = row.get("answer") or (row.get("reward_model") or {}).get("ground_truth")
        if answer is None:
            raise ValueError(f"{path}: a row has neither 'answer' nor reward_model.ground_truth")
        return {"prompt": [{"role": "user", "content": f"{problem_text(row['prompt'])}\n\n{INSTRUCTION}"}],
                "answer": str(answer)}

    return raw.map(convert, remove_columns=raw.column_names)


def math_verify_reward(completions, answer, **kwargs) -> list[float]:
    """1.0 where math-verify finds the completion's final answer equal to the reference."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return math_reward(texts, answer).tolist()


def smoke_prompts(n: int = 64, seed: int = 0):
    """``n`` rows {prompt: [user message], answer} asking for a product of two three-digit numbers: a mix of
    right and wrong answers for a small instruct model, checked by math-verify, nothing to download."""
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    a, b = rng.integers(100, 1000, size=(2, n))
    return Dataset.from_dict({
        "prompt": [[{"role": "user", "content": f"What is {x} x {y}?\n\n{INSTRUCTION}"}] for x, y in zip(a, b)],
        "answer": [str(int(x) * int(y)) for x, y in zip(a, b)],
    })


def trainer_config(opts, num_processes: int = 8):
    """The arm's TRL config: shared settings, then the arm's group size and V0.5 settings."""
    from trl import GRPOConfig

    from v05.integrations.trl import V05Config

    kind, group, v05 = ARMS[opts.arm]
    rows = opts.prompts_per_step * group
    steps_per_generation = max(1, rows // (opts.per_device_batch * num_processes))
    shared = dict(
        output_dir=opts.out, seed=opts.seed, max_steps=opts.steps, learning_rate=1e-6, lr_scheduler_type="constant",
        num_generations=group, per_device_train_batch_size=opts.per_device_batch,
        steps_per_generation=steps_per_generation, max_completion_length=opts.max_completion_length,
        temperature=1.0, beta=0.0, loss_type="dapo", epsilon_high=0.28, bf16=not opts.dry_run,
        use_cpu=opts.dry_run, gradient_checkpointing=not opts.dry_run, use_vllm=not opts.dry_run,
        vllm_mode="colocate", vllm_gpu_memory_utilization=0.3, logging_steps=1, save_steps=50,
        report_to="none" if opts.dry_run else "tensorboard",
    )
    if opts.smoke:  # one GPU, nothing saved or reported; vLLM only if installed
        shared.update(use_vllm=not opts.dry_run and _has_vllm(), vllm_gpu_memory_utilization=0.25,
                      save_strategy="no", report_to="none")
    if kind == "grpo":
        return GRPOConfig(**shared)
    return V05Config(**shared, **v05, prior_source="value_model")


def train(opts) -> None:
    from trl import GRPOTrainer

    from v05.integrations.trl import V05GRPOTrainer

    data = load_prompts(opts.train_data)
    args = trainer_config(opts, num_processes=1 if opts.dry_run else _num_processes())
    cls = V05GRPOTrainer if ARMS[opts.arm][0] == "v05" else GRPOTrainer
    if opts.dry_run:
        reward = math_verify_reward([[{"role": "assistant", "content": "so \\boxed{" + data[0]["answer"] + "}"}]],
                                    [data[0]["answer"]])
        built = Path(opts.model).is_dir()  # a local model folder: build the trainer too (no hub download)
        if built:
            cls(model=opts.model, reward_funcs=math_verify_reward, args=args, train_dataset=data)
        print(f"dry run: {len(data)} prompts, arm {opts.arm}, {cls.__name__} {'built' if built else 'not built'}, "
              f"generation batch {args.generation_batch_size} rows, reward of a right answer {reward}; not training")
        return
    trainer = cls(model=opts.model, reward_funcs=math_verify_reward, args=args, train_dataset=data)
    trainer.train()
    trainer.save_model(opts.out)


def smoke(opts, started: float) -> bool:
    """The smoke run (or, with ``--dry-run``, its CPU rehearsal); prints one verdict line, returns PASS."""
    from trl import GRPOTrainer

    from v05.integrations.trl import V05GRPOTrainer, trl_mismatches

    label = "TRL smoke (dry run)" if opts.dry_run else "TRL smoke"
    try:
        data = load_prompts(opts.train_data) if opts.train_data else smoke_prompts()
        right = "so \\boxed{" + data[0]["answer"] + "}"
        if math_verify_reward([[{"role": "assistant", "content": right}], [{"role": "assistant", "content": "7"}]],
                              [data[0]["answer"]] * 2) != [1.0, 0.0]:
            raise ValueError("the reward does not score a right answer 1 and a wrong one 0")
        args = trainer_config(opts, num_processes=1 if opts.dry_run else _num_processes())
        cls = V05GRPOTrainer if ARMS[opts.arm][0] == "v05" else GRPOTrainer
        if cls is V05GRPOTrainer and trl_mismatches():
            raise ImportError("the installed TRL differs from what V05GRPOTrainer touches: " + "; ".join(trl_mismatches()))
        if opts.dry_run and not Path(opts.model).is_dir():
            print(f"{label}: PASS ({len(data)} prompts, arm {opts.arm}, {cls.__name__} config of "
                  f"{args.generation_batch_size} rows per generation batch, reward "
                  f"{'and TRL internals ' if cls is V05GRPOTrainer else ''}checked; {opts.model} is not a local "
                  "folder: nothing loaded or trained)")
            return True
        trainer = cls(model=opts.model, reward_funcs=math_verify_reward, args=args, train_dataset=data)
        trainer.train()
    except Exception as e:  # noqa: BLE001  the verdict names any failure in one line
        print(f"{label}: FAIL ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return False
    ok, summary = smoke_verdict(trainer.state.log_history, time.perf_counter() - started, opts.steps, args,
                                limit=None if opts.dry_run else SMOKE_SECONDS)
    print(f"{label}: {'PASS' if ok else 'FAIL'} ({summary})")
    return ok


def smoke_verdict(logs: list[dict], seconds: float, steps: int, args, limit: float | None = SMOKE_SECONDS):
    """(passed, one-line summary) of a smoke run from TRL's ``log_history`` (``logging_steps=1``).

    Checks: ``steps`` steps logged, each with a finite loss and gradient norm; every generation batch a finite
    reward and, for a V0.5 config, the V0.5 metrics with rollouts per prompt within num_generations..k_max and
    the estimator defined; ``seconds`` within ``limit`` (None: no limit).
    """
    step_logs = [h for h in logs if "loss" in h and "train_runtime" not in h]
    batches = [h for h in logs if "reward" in h and "train_runtime" not in h]
    problems = []
    if len(step_logs) != steps:
        problems.append(f"{len(step_logs)} of {steps} steps logged")
    for key in ("loss", "grad_norm"):
        bad = [h.get("step") for h in step_logs if not _finite(h.get(key))]
        if bad:
            problems.append(f"{key} not finite at step(s) {bad}")
    if not batches or not all(_finite(h["reward"]) for h in batches):
        problems.append("no finite reward logged" if not batches else "a reward is not finite")
    v05 = hasattr(args, "k_max")
    rollouts = [h.get("v05/rollouts_per_prompt_mean", math.nan) for h in batches]
    if v05:
        k_max = args.k_max or args.num_generations
        if not all(_finite(r) and args.num_generations <= r <= k_max for r in rollouts):
            problems.append(f"v05/rollouts_per_prompt_mean {rollouts} not all within {args.num_generations}..{k_max}")
        if any(h.get("v05/undefined", 1.0) != 0 for h in batches):
            problems.append("the estimator was undefined on a generation batch (or v05/undefined missing)")
    if limit is not None and seconds > limit:
        problems.append(f"took {seconds:.0f} s, over the {limit:.0f} s limit")
    reward = np.mean([h["reward"] for h in batches]) if batches else math.nan
    summary = f"{len(step_logs)} steps, {len(batches)} generation batches in {seconds:.0f} s; reward {reward:.3f}"
    if v05 and batches:
        overhead = sum(h.get("v05/overhead_s", 0.0) for h in batches)
        step_time = sum(h.get("step_time", 0.0) for h in step_logs)
        summary += (f"; rollouts/prompt {np.mean(rollouts):.1f}, top-up rounds "
                    f"{sum(h.get('v05/topup_rounds', 0.0) for h in batches):.0f}; V0.5 overhead {overhead:.2f} s")
        if step_time > 0:
            summary += f" ({100 * overhead / step_time:.2f}% of step time)"
    return not problems, "; ".join(problems + [summary])


def _finite(value) -> bool:
    """A logged value is a finite number (TRL logs None where every value was NaN)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num_processes() -> int:
    from accelerate import PartialState

    return PartialState().num_processes


def evaluate(checkpoint: str, benchmarks: str, samples: int) -> dict:
    """mean@samples accuracy on each of the six benchmarks (temperature 0.6, top-p 0.95, 16k tokens)."""
    out = {}
    generate = _vllm_generate(checkpoint) if _has_vllm() else _hf_generate(checkpoint)
    for name in BENCHMARKS:
        problems = load_math_benchmark(name, benchmarks)
        prompts = [[{"role": "user", "content": f"{p.prompt}\n\n{INSTRUCTION}"}] for p in problems]
        texts = generate(prompts, samples)  # (len(problems) * samples,), problem by problem
        answers = [p.answer for p in problems for _ in range(samples)]
        out[name] = float(np.mean(math_reward(texts, answers)))
    out["mean"] = float(np.mean([out[n] for n in BENCHMARKS]))
    return out


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def _vllm_generate(checkpoint):
    from vllm import LLM, SamplingParams

    llm = LLM(model=checkpoint, tensor_parallel_size=1)

    def generate(prompts, n):
        params = SamplingParams(n=n, temperature=0.6, top_p=0.95, max_tokens=16384)
        outputs = llm.chat(prompts, params)
        return [c.text for o in outputs for c in o.outputs]

    return generate


def _hf_generate(checkpoint):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16, device_map="auto")

    def generate(prompts, n):
        texts = []
        for p in prompts:
            enc = tok.apply_chat_template(p, add_generation_prompt=True, return_tensors="pt").to(model.device)
            out = model.generate(enc, do_sample=True, temperature=0.6, top_p=0.95, max_new_tokens=16384,
                                 num_return_sequences=n)
            texts += tok.batch_decode(out[:, enc.shape[1]:], skip_special_tokens=True)
        return texts

    return generate


def main(argv=None) -> None:
    started = time.perf_counter()
    opts = parse_args(argv)
    if opts.smoke:
        vars(opts).update(SMOKE)
        if opts.dry_run and Path(opts.model).is_dir():  # a local model: one tiny step on CPU
            vars(opts).update(SMOKE_DRY)
        raise SystemExit(0 if smoke(opts, started) else 1)
    if opts.eval_only:
        scores = evaluate(opts.eval_only, opts.benchmarks, opts.eval_samples)
        Path(opts.eval_only, "eval_math.json").write_text(json.dumps(scores, indent=1))
        print(json.dumps(scores, indent=1))
        return
    if not opts.train_data:
        raise SystemExit("--train-data is required (a DAPO-Math-17k-style parquet or JSONL file)")
    train(opts)


if __name__ == "__main__":
    main()
