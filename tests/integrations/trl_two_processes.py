"""Run by ``test_trl_distributed.py`` under ``torchrun --nproc_per_node 2`` (gloo, CPU): one V05GRPOTrainer
step with top-ups; each process writes what it trained on and the batch it decided from."""

import json
import sys
from pathlib import Path

import torch
from trl_helpers import char_tokenizer, dataset, tiny_qwen2, v05_args

from v05.integrations.trl import V05GRPOTrainer

HIGH = {"what is 0+0?", "what is 0+2?"}


def reward(prompts, completions, **kwargs):
    return [float(p in HIGH) for p in prompts]


class Recording(V05GRPOTrainer):
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.local_advantages = out["advantages"].tolist()
        return out


def main(out: Path) -> None:
    torch.set_num_threads(1)
    args = v05_args(out, per_device_train_batch_size=8, prior_source="column", estimator="v05_paper", k_max=12,
                    max_rounds=1, max_steps=1)  # one top-up round: the test's row counts
    trainer = Recording(model=tiny_qwen2(), reward_funcs=reward, args=args, processing_class=char_tokenizer(),
                        train_dataset=dataset(4, prior_value=[0.0] * 4))
    trainer.train()
    last = trainer.v05_last_step
    rank = trainer.accelerator.process_index
    (out / f"rank{rank}.json").write_text(json.dumps({
        "processes": trainer.accelerator.num_processes, "local_advantages": trainer.local_advantages,
        "prompts": last.prompts, "group": last.group.tolist(), "advantage": last.advantage.tolist(),
        "rounds": last.rounds}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
