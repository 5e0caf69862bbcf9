"""The rollout rule of V05GRPOTrainer by one setting (``rollout_rule``), against the real TRL on a tiny random
Qwen2: TRL's own first round of num_generations, then the rule's top-ups; bad choices fail when the config is
built."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from trl_helpers import char_tokenizer, dataset, tiny_qwen2, v05_args

from v05.baselines import compute
from v05.budget import Allocation, OslaConfig, make_rule
from v05.budget.knapsack import knapsack_counts
from v05.integrations.trl import V05GRPOTrainer

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning"),
              pytest.mark.usefixtures("one_torch_thread")]

HIGH = {"what is 0+0?", "what is 0+2?"}



def alternating_on(high: set):
    """1, 0, 1, 0... over the completions of a prompt in ``high`` (a varied group), 0 for the others (an
    all-equal group): the rules' decisions do not depend on what the random model samples."""
    def reward(prompts, completions, **kwargs):
        return [float(p in high and i % 2 == 0) for i, p in enumerate(prompts)]
    return reward


class PoolTrainer(V05GRPOTrainer):
    """The real trainer, keeping the whole pool's output as it was before Reinforce-Ada's rows were taken."""

    def _v05_keep(self, out, sizes, keep):
        self.pool_output = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
        return super()._v05_keep(out, sizes, keep)


def run(tmp_path, prior, **config):
    args = v05_args(tmp_path, prior_source="column", estimator="v05_paper", max_steps=1, per_device_train_batch_size=16,
                    **config)
    trainer = PoolTrainer(model=tiny_qwen2(), reward_funcs=alternating_on(HIGH), args=args,
                          train_dataset=dataset(4, prior_value=prior), processing_class=char_tokenizer())
    trainer.train()
    last = trainer.v05_last_step
    return trainer, {p: int((last.group == j).sum()) for j, p in enumerate(last.prompts)}


def test_osla_by_name_is_the_osla_settings(tmp_path):
    args = v05_args(tmp_path, rollout_rule="osla", k_max=12)
    assert args.plan_rule == args.osla == OslaConfig(k_init=4, k_max=12)


def test_knapsack_tops_up_to_its_split_of_the_budget_in_one_round(tmp_path):
    prior = [0.5, 0.0, 1.0, 0.3]
    trainer, counts = run(tmp_path, prior, rollout_rule="knapsack", rollout_rule_options={"k_per_prompt": 8}, k_max=16)
    last = trainer.v05_last_step
    assert sorted(last.prior.mean.tolist()) == sorted(prior)  # row j is prompt j, in TRL's shuffled order
    want = knapsack_counts(last.prior.mean, 32, k_min=4, k_max=16, block=4)
    assert list(counts.values()) == want.tolist() and sum(counts.values()) == 32
    assert last.rounds == (1 if (want > 4).any() else 0)
    assert trainer.args.plan_rule.k_init == 4  # num_generations: TRL's own first round


def test_dynamic_draws_the_all_equal_groups_again(tmp_path):
    trainer, counts = run(tmp_path, [0.5] * 4, rollout_rule="dynamic", rollout_rule_options='{"k_max": 12}')
    assert counts == {p: 4 if p in HIGH else 12 for p in counts}  # the varied groups stop; the others reach k_max
    assert trainer.v05_last_step.rounds == 2
    assert sum(len(b["advantages"]) for b in trainer._buffered_inputs) == 8 + 2 * 12


def rows_of(out: dict, advantages) -> list[tuple]:
    """Each row as (its prompt tokens, completion tokens, advantage), sorted: the rows whatever their order."""
    return sorted((tuple(p[m.bool()].tolist()), tuple(c[k.bool()].tolist()), round(float(a), 5)) for p, m, c, k, a in
                  zip(out["prompt_ids"], out["prompt_mask"], out["completion_ids"], out["completion_mask"], advantages))


def closed_form_loss(inputs: dict, loss_type: str, max_completion_length: int) -> float:
    """TRL's policy loss at the first step of a generation batch (ratio 1, no KL): -A per token, normalised as
    ``loss_type`` does, over the rows of ``inputs`` only."""
    a, mask = inputs["advantages"].double(), inputs["completion_mask"].double()  # (B,), (B, T)
    tokens = mask.sum(1)  # (B,)
    if loss_type == "grpo":
        return float((-a * tokens / tokens.clamp(min=1)).mean())
    total = float((-a * tokens).sum())
    return total / {"bnpo": float(tokens.sum()), "dapo": float(inputs["num_items_in_batch"]),
                    "dr_grpo": len(a) * max_completion_length}[loss_type]


def test_reinforce_ada_trains_on_n_rows_a_prompt_with_the_whole_pool_as_baseline(tmp_path):
    options = {"n": 2, "k_max": 12, "max_rounds": 2}
    trainer, counts = run(tmp_path, [0.5] * 4, rollout_rule="reinforce_ada", rollout_rule_options=options)
    assert counts == {p: 4 if p in HIGH else 12 for p in counts}  # both outcomes: retired; all 0: up to k_max
    last = trainer.v05_last_step
    prior = last.prior.mean[last.group]
    np.testing.assert_allclose(last.advantage, compute("v05_paper", last.rewards, last.group, prior=prior).advantage)
    rule = make_rule("reinforce_ada", {**options, "round_size": 4})
    keep = rule.update_rows(Allocation(last.rewards, last.group, np.zeros(len(last.group), dtype=np.int64),
                                       np.bincount(last.group), last.rounds + 1))
    assert np.bincount(last.group[keep]).tolist() == [2] * 4
    (inputs,) = trainer._buffered_inputs  # one micro-step: only the kept rows, their advantages from the pool
    assert rows_of(inputs, inputs["advantages"]) == rows_of(
        {k: v[torch.as_tensor(keep)] for k, v in trainer.pool_output.items() if k.startswith(("prompt", "completion"))},
        last.advantage[keep])
    assert int(inputs["num_items_in_batch"]) == int(inputs["completion_mask"].sum())
    trainer.model.train()
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):  # the dropped rows weigh in no normaliser
        trainer.loss_type = loss_type
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, inputs)
        assert float(loss) == pytest.approx(closed_form_loss(inputs, loss_type, trainer.max_completion_length),
                                            rel=1e-5, abs=1e-7), loss_type


def test_reinforce_ada_counts_an_unscorable_completion_as_its_prior(tmp_path):
    unscorable = {"what is 0+0?", "what is 0+1?"}  # priors 0.9 (above the threshold 0.7) and 0.1

    def reward(prompts, completions, **kwargs):
        return [None if p in unscorable else float(i % 2 == 0) for i, p in enumerate(prompts)]

    args = v05_args(tmp_path, prior_source="column", estimator="v05_paper", max_steps=1, per_device_train_batch_size=16,
                    rollout_rule="reinforce_ada",
                    rollout_rule_options={"exit": "positive_focused", "n": 2, "k_max": 12, "max_rounds": 2})
    trainer = V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=reward, args=args, processing_class=char_tokenizer(),
                             train_dataset=dataset(4, prior_value=[0.9, 0.1, 0.5, 0.5]))
    trainer.train()
    last = trainer.v05_last_step
    counts = {p: int((last.group == j).sum()) for j, p in enumerate(last.prompts)}
    assert counts == {"what is 0+0?": 4, "what is 0+1?": 12, "what is 0+2?": 4, "what is 0+3?": 4}
    (inputs,) = trainer._buffered_inputs
    assert len(inputs["advantages"]) == 8  # n = 2 of each prompt
    assert int(torch.isnan(inputs["v05_rewards"]).sum()) == 4 and (inputs["advantages"][torch.isnan(
        inputs["v05_rewards"])] == 0).all()  # the unscorable rows kept train with advantage 0


@pytest.mark.parametrize(("config", "message"), [
    ({"rollout_rule": "knapsak"}, "rollout_rule == 'knapsak'; known rollout rules: osla, reinforce_ada"),
    ({"rollout_rule": "knapsack", "rollout_rule_options": {"k_init": 8}},
     "k_init == 8 but its first round is num_generations (4)"),
    ({"rollout_rule": "dynamic", "rollout_rule_options": {"k": 2}}, "k == 2 but its first round is num_generations"),
    ({"rollout_rule": "cures", "rollout_rule_options": {"tau": 0.1, "k_mx": 8}},
     "rollout_rule_options: rollout rule cures got unknown option(s) ['k_mx']"),
    ({"rollout_rule": "dynamic", "osla_cost": 0.1}, "osla_cost set with rollout_rule = 'dynamic'"),
    ({"rollout_rule": "dynamic", "k_max": 12, "rollout_rule_options": {"k_max": 16}}, "k_max (12) and rollout_rule"),
    ({"rollout_rule": "dynamic", "rollout_rule_options": {"k_max": 10}}, "k_max - k (10 - 4) must be a multiple"),
    ({"rollout_rule": "knapsack", "budget_per_prompt": 3},
     "budget (6) is below k_min x prompts (4 x 2 = 8) (budget = budget_per_prompt x prompts per generation batch"),
    ({"rollout_rule_options": {"k_max": 8}}, "rollout_rule 'osla' takes no rollout_rule_options"),
    ({"rollout_rule_options": "{k_max"}, "rollout_rule_options = '{k_max' is not valid JSON"),
    ({"rollout_rule": "reinforce_ada", "rollout_rule_options": {"n": 8}},
     "rollout_rule_options n (8) must be <= num_generations (4)"),
    ({"rollout_rule": "reinforce_ada", "rollout_rule_options": {"n": 3}, "per_device_train_batch_size": 2,
      "gradient_accumulation_steps": 2}, "3 rows, which do not split evenly over processes x steps_per_generation (2)"),
])
def test_bad_rule_settings_fail_when_the_config_is_built(tmp_path, config, message):
    with pytest.raises((TypeError, ValueError)) as e:
        v05_args(tmp_path, **config)
    assert message in str(e.value)
