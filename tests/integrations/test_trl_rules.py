"""The rollout rule of V05GRPOTrainer by one setting (``rollout_rule``), against the real TRL on a tiny random
Qwen2: TRL's own first round of num_generations, then the rule's top-ups; bad choices fail when the config is
built."""

from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
from trl_helpers import char_tokenizer, dataset, tiny_qwen2, v05_args

from v05.budget import OslaConfig
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


def run(tmp_path, prior, **config):
    args = v05_args(tmp_path, prior_source="column", estimator="v05_paper", max_steps=1, per_device_train_batch_size=16,
                    **config)
    trainer = V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=alternating_on(HIGH), args=args,
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
    ({"rollout_rule": "reinforce_ada"}, "rollout_rule = 'reinforce_ada' is not supported in this trainer yet: its "
                                        "update on n rollouts a prompt"),
])
def test_bad_rule_settings_fail_when_the_config_is_built(tmp_path, config, message):
    with pytest.raises((TypeError, ValueError)) as e:
        v05_args(tmp_path, **config)
    assert message in str(e.value)
