"""One real training step of SmolLM2-135M-Instruct (offline, from the installed GGUF) with V05GRPOTrainer."""

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from datasets import Dataset

from v05.integrations.trl import V05Config, V05GRPOTrainer
from v05.pretrained import load_smollm2
from v05.tasks.math_reward import math_reward

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")]


def boxed_sum(completions, answer, **kwargs):
    return math_reward([c[0]["content"] for c in completions], answer).tolist()


def test_smollm2_takes_a_v05_step_with_the_value_model_prior(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads fighting other jobs on 2 cores are ~10x slower
    try:
        model, tokenizer = load_smollm2()
        data = Dataset.from_dict({
            "prompt": [[{"role": "user", "content": f"What is {a} + {b}? Put the final answer in \\boxed{{}}."}]
                       for a, b in [(2, 3), (4, 4)]],
            "answer": ["5", "8"],
        })
        args = V05Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, gradient_checkpointing=False,
                         per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=1,
                         learning_rate=1e-5, report_to="none", save_strategy="no", logging_steps=1, seed=0,
                         disable_tqdm=True, estimator="v05_paper")
        before = model.model.norm.weight.detach().clone()
        trainer = V05GRPOTrainer(model=model, reward_funcs=boxed_sum, args=args, train_dataset=data,
                                 processing_class=tokenizer)
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    logged = trainer.state.log_history[0]
    assert np.isfinite(logged["loss"]) and np.isfinite(logged["v05/prior_mean"])
    last = trainer.v05_last_step
    assert sorted(last.prompts) == sorted(m[0]["content"] for m in data["prompt"]) and len(last.rewards) == 4
    assert 0 < last.prior.mean.min() and last.prior.mean.max() < 1  # the value model's cold start, read from the batch
    assert np.any(last.advantage != 0)  # the fused baseline differs from 0/1 rewards (seed 0)
    assert not torch.equal(before, model.model.norm.weight.detach())
