"""Run by ``test_trl_distributed.py`` under ``torchrun --nproc_per_node 2`` (gloo, CPU): one V05GRPOTrainer
step with top-ups (OSLA, or Reinforce-Ada with ``reinforce_ada`` as second argument); each process writes what
it trained on and the batch it decided from."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from trl_helpers import char_tokenizer, dataset, tiny_qwen2, v05_args

from v05.integrations.trl import V05GRPOTrainer
from v05.integrations.trl.rows import local_rows

HIGH = {"what is 0+0?", "what is 0+2?"}


def reward(prompts, completions, **kwargs):
    return [float(p in HIGH) for p in prompts]


class Recording(V05GRPOTrainer):
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.local_advantages = out["advantages"].tolist()
        self.local_items = int(out["num_items_in_batch"])
        return out

    def _v05_keep(self, out, sizes, keep):
        where = (self.accelerator.process_index, self.accelerator.num_processes)
        self.pool_rows = dict(zip(local_rows(np.arange(sum(sizes)), sizes, *where).tolist(), completions(out)))
        kept, mine = super()._v05_keep(out, sizes, keep)
        self.kept_rows = dict(zip(mine.tolist(), completions(kept)))
        return kept, mine


def completions(out) -> list[list[int]]:
    return [ids[mask.bool()].tolist() for ids, mask in zip(out["completion_ids"], out["completion_mask"])]


def main(out: Path, rule: str) -> None:
    torch.set_num_threads(1)
    if rule == "reinforce_ada":  # constant rewards: no prompt retires, each draws 4 + 4, the loss takes 2
        top_ups = {"rollout_rule": rule, "rollout_rule_options": {"n": 2, "k_max": 8, "max_rounds": 1}}
    else:
        top_ups = {"k_max": 12, "max_rounds": 1}  # one top-up round: the test's row counts
    args = v05_args(out, per_device_train_batch_size=8, prior_source="column", estimator="v05_paper", max_steps=1,
                    **top_ups)
    trainer = Recording(model=tiny_qwen2(), reward_funcs=reward, args=args, processing_class=char_tokenizer(),
                        train_dataset=dataset(4, prior_value=[0.0] * 4))
    trainer.train()
    last = trainer.v05_last_step
    rank = trainer.accelerator.process_index
    (out / f"rank{rank}.json").write_text(json.dumps({
        "processes": trainer.accelerator.num_processes, "local_advantages": trainer.local_advantages,
        "prompts": last.prompts, "group": last.group.tolist(), "advantage": last.advantage.tolist(),
        "rounds": last.rounds, "num_items_in_batch": trainer.local_items,
        "pool_rows": getattr(trainer, "pool_rows", None), "kept_rows": getattr(trainer, "kept_rows", None)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "osla")
