"""V05GRPOTrainer against the real TRL 1.16 on CPU (a tiny random Qwen2, no mocks): it trains, its advantages
are v05.baselines', it reproduces GRPOTrainer exactly where it should, top-ups follow the plan, bad settings
fail before training, and its state survives a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from trl import GRPOTrainer
from trl_helpers import char_tokenizer, dataset, grpo_args, parity_reward, tiny_qwen2, v05_args

from v05.baselines import compute
from v05.budget import RolloutPlan
from v05.integrations.trl import V05Config, V05GRPOTrainer
from v05.integrations.trl.state import FILE as STATE_FILE

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning"),
              pytest.mark.usefixtures("one_torch_thread")]



class Recording:
    """Mixin: keep the output of every generation batch (what the loss will see) and the final weights."""

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.outputs = getattr(self, "outputs", []) + [{k: v for k, v in out.items()}]
        return out


class RecordingGRPO(Recording, GRPOTrainer):
    pass


class RecordingV05(Recording, V05GRPOTrainer):
    pass


def train(cls, args, reward=parity_reward, data=None, **kwargs):
    trainer = cls(model=tiny_qwen2(), reward_funcs=reward, args=args, train_dataset=data or dataset(),
                  processing_class=char_tokenizer(), **kwargs)
    trainer.train()
    return trainer


# -- training ------------------------------------------------------------------------------------------------


def test_trains_with_the_value_model_prior_and_every_parameter_changes(tmp_path):
    model = tiny_qwen2()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = V05GRPOTrainer(model=model, reward_funcs=parity_reward, args=v05_args(tmp_path, max_steps=3),
                             train_dataset=dataset(), processing_class=char_tokenizer())
    trainer.train()
    for name, p in model.named_parameters():
        assert not torch.equal(before[name], p.detach()), f"{name} did not change"
    logged = trainer.state.log_history[0]
    for key in ("v05/weight_mean", "v05/prior_rejected_frac", "v05/rollouts_per_prompt_mean",
                "v05/rollouts_per_prompt_max", "v05/prior_mse", "v05/topup_rounds", "v05/overhead_s"):
        assert np.isfinite(logged[key]), key
    # three generation batches of 2 prompts went into the outcome history, in step order
    assert trainer.v05_generation == 3
    assert trainer.v05_prior.history.step == [0, 0, 1, 1, 2, 2]


def test_one_prompt_per_batch_starts_uninformed_then_reads_the_history(tmp_path):
    trainer = train(V05GRPOTrainer, v05_args(tmp_path, per_device_train_batch_size=4, max_steps=3))
    priors = [h["v05/prior_mean"] for h in trainer.state.log_history if "v05/prior_mean" in h]
    assert priors[0] == 0.5 and all(p != 0.5 for p in priors[1:])  # no other prompt to read the policy from


def test_the_advantages_it_trains_on_are_v05_baselines_on_the_same_rewards(tmp_path):
    trainer = train(RecordingV05, v05_args(tmp_path, estimator="v05_paper"))
    last = trainer.v05_last_step
    expected = compute("v05_paper", last.rewards, last.group, prior=last.prior.mean[last.group]).advantage
    np.testing.assert_allclose(last.advantage, expected, rtol=0, atol=1e-12)
    trained = trainer.outputs[-1]["advantages"]  # one process: its slice is the whole batch
    assert torch.equal(trained, torch.as_tensor(expected, dtype=torch.float32))
    assert torch.equal(trainer.outputs[-1]["v05_rewards"], torch.as_tensor(last.rewards, dtype=torch.float32))
    # the completions table shows these advantages, not GRPO's
    assert list(trainer._logs["advantages"])[-len(expected):] == pytest.approx(expected.tolist())


@pytest.mark.parametrize("estimator, options, scale_rewards",
                         [("grpo", {"eps": 1e-4}, "group"), ("mean", {}, "none")])
def test_reproduces_grpo_trainer_exactly(tmp_path, estimator, options, scale_rewards):
    grpo = train(RecordingGRPO, grpo_args(tmp_path, max_steps=3, scale_rewards=scale_rewards))
    ours = train(RecordingV05, v05_args(tmp_path, max_steps=3, estimator=estimator, estimator_options=options))
    assert ours.v05_prior is None  # neither the estimator nor top-ups need a prior
    for a, b in zip(grpo.outputs, ours.outputs, strict=True):
        assert a["advantages"].abs().sum() > 0
        assert torch.equal(a["advantages"], b["advantages"])
        assert torch.equal(a["completion_ids"], b["completion_ids"])
    for (name, p), q in zip(grpo.model.named_parameters(), ours.model.parameters(), strict=True):
        assert torch.equal(p, q), name


def sometimes_unscorable(completions, **kwargs):
    """Like parity_reward, but None (unscorable) when the completion holds a 'z' or an 'e'."""
    return [None if ("z" in c or "e" in c) else r for c, r in zip(completions, parity_reward(completions))]


def test_unscorable_completions_get_advantage_zero_as_in_trl(tmp_path):
    grpo = train(RecordingGRPO, grpo_args(tmp_path), reward=sometimes_unscorable)
    ours = train(RecordingV05, v05_args(tmp_path, estimator="grpo", estimator_options={"eps": 1e-4}),
                 reward=sometimes_unscorable)
    last = ours.v05_last_step
    assert np.isnan(last.rewards).any() and not np.isnan(last.advantage).any()
    assert np.all(last.advantage[np.isnan(last.rewards)] == 0)
    for a, b in zip(grpo.outputs, ours.outputs, strict=True):
        # equal up to TRL's float32 rounding (a group of 3 scorable rewards has a mean of 1/3; we work in float64)
        torch.testing.assert_close(b["advantages"], a["advantages"], rtol=3e-7, atol=0)


# -- top-ups -------------------------------------------------------------------------------------------------

HIGH = {"what is 0+0?", "what is 0+2?"}


def passes_on(high: set):
    """A reward of 1 for every completion of a prompt in ``high``, 0 otherwise: the plan's decisions do not
    depend on what the random model samples."""
    def reward(prompts, completions, **kwargs):
        return [float(p in high) for p in prompts]
    return reward


def top_up_run(tmp_path, high=HIGH, **config):
    data = dataset(4, prior_value=[0.0] * 4)  # the prior says 0: right for the others, clearly wrong for high
    config = {"per_device_train_batch_size": 16, "k_max": 12, "max_rounds": 1, **config}
    args = v05_args(tmp_path, prior_source="column", estimator="v05_paper", max_steps=1, **config)
    return train(RecordingV05, args, reward=passes_on(high), data=data)


def test_top_ups_go_where_the_plan_sends_them_and_are_trained_on(tmp_path):
    trainer = top_up_run(tmp_path)
    last = trainer.v05_last_step
    counts = {p: int((last.group == j).sum()) for j, p in enumerate(last.prompts)}
    assert counts == {p: 12 if p in HIGH else 4 for p in last.prompts}
    assert last.rounds == 1
    out = trainer.outputs[0]
    assert len(out["advantages"]) == len(out["completion_ids"]) == len(out["prompt_ids"]) == 16 + 2 * 8
    assert out["num_items_in_batch"] == out["completion_mask"].sum()
    # the planner, driven by hand on the same first-round rewards, asks for the same rows
    plan = RolloutPlan(last.prior.mean, trainer.args.osla, block=4)
    first = plan.request()
    plan.record(last.group[:16], last.rewards[:16])
    extra = plan.request()
    assert dict(zip(extra.index.tolist(), extra.n.tolist())) == {j: 8 for j, p in enumerate(last.prompts) if p in HIGH}
    assert len(first) == 4
    logged = trainer.state.log_history[0]
    assert logged["v05/topup_rounds"] == 1 and logged["v05/rollouts_per_prompt_max"] == 12
    assert logged["v05/topup_prompts_frac"] == 0.5


@pytest.mark.parametrize("config, rounds, total", [
    ({"max_rounds": None}, 2, 32),               # one block per round: 4 -> 8 -> 12
    ({"budget_per_prompt": 5}, 1, 20),           # one block in all (4 prompts x 5)
    ({"steps_per_generation": 2, "per_device_train_batch_size": 8}, 1, 32),  # the batch still splits in two
    # 4 prompts x 4 over 8 micro-steps: a round must draw a multiple of 8; here 2 x 4 (one block per HIGH prompt)
    ({"steps_per_generation": 8, "per_device_train_batch_size": 2, "k_max": 8}, 1, 24),
    # three prompts want one block each, but a round must hold a multiple of 8 and none has room for more:
    # the smallest gain gives its block up
    ({"high": HIGH | {"what is 0+1?"}, "steps_per_generation": 8, "per_device_train_batch_size": 2, "k_max": 8},
     1, 24),
])
def test_top_up_rounds_and_totals_follow_the_settings(tmp_path, config, rounds, total):
    trainer = top_up_run(tmp_path, **config)
    assert trainer.v05_last_step.rounds == rounds
    assert len(trainer.v05_last_step.rewards) == total
    assert sum(len(b["advantages"]) for b in trainer._buffered_inputs) == total  # nothing dropped by TRL's split


# -- priors --------------------------------------------------------------------------------------------------


def test_a_callable_prior_is_asked_once_per_batch_with_its_prompts(tmp_path):
    calls = []

    def prior_fn(prompts):
        calls.append(list(prompts))
        return np.full(len(prompts), 0.25), np.full(len(prompts), 0.01)

    trainer = train(V05GRPOTrainer, v05_args(tmp_path, prior_source="callable", estimator="v05_prior_var"),
                    prior_fn=prior_fn)
    assert len(calls) == 2 and all(len(c) == 2 and c[0].startswith("what is") for c in calls)
    np.testing.assert_array_equal(trainer.v05_last_step.prior.mean, [0.25, 0.25])


def test_a_bad_callable_prior_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"prior_fn output\[1\] = 1.5 \(prompt 'what is .*'\): the prior must be in \[0, 1\]"):
        train(V05GRPOTrainer, v05_args(tmp_path, prior_source="callable"), prior_fn=lambda p: [0.5, 1.5])


# -- bad settings fail before training ------------------------------------------------------------------------


@pytest.mark.parametrize("config, message", [
    ({"estimator": "rlo"}, r"estimator = 'rlo' is unknown; known: .*rloo"),
    ({"estimator": "grpo", "estimator_options": {"std": 1}}, r"estimator_options = \{'std': 1\}: grpo got unknown option"),
    ({"estimator_options": "{tau2: 1}"}, r"estimator_options = '\{tau2: 1\}' is not valid JSON"),
    ({"estimator": "rloo", "num_generations": 2, "k_max": 3},
     r"k_max \(3\) must be a multiple of num_generations \(2\): top-ups come in blocks"),
    ({"k_max": 16, "budget_per_prompt": 3}, r"budget_per_prompt == 3, must be a finite number >= 4"),
    ({"k_max": 16, "rollout_budget": 20, "budget_per_prompt": 5}, r"rollout_budget and budget_per_prompt are both set"),
    ({"k_max": 16, "osla_rule": "bayes"}, r"rule='bayes'; expected one of \('paper', 'eb'\)"),
    ({"scale_rewards": "none"}, r"scale_rewards = 'none': V05GRPOTrainer does not use GRPO's reward scaling"),
    ({"reward_scale": "0,0"}, r"reward_scale = '0,0': .*numbers lo < hi"),
    ({"prior_source": "oracle"}, r"prior_source='oracle'; expected one of"),
    ({"estimator": "v05_eb_loo", "per_device_train_batch_size": 4, "prior_source": "column"},
     r"estimator 'v05_eb_loo' is not defined on groups of 4 rollout\(s\)"),
    ({"estimator": "v05_prior_var", "prior_source": "column"}, r"set prior_var_column"),
])
def test_bad_settings_fail_when_the_config_is_built(tmp_path, config, message):
    with pytest.raises((ValueError, TypeError), match=message):
        v05_args(tmp_path, **config)


def test_the_v05_fields_are_the_layers_settings(tmp_path):
    """Defaults and help come from the layers' settings; the old rollout_budget still reads, with a warning."""
    from v05.budget import DEFAULT_MAX_ROUNDS, OslaConfig
    from v05.value import ValuePriorSettings

    args = v05_args(tmp_path, k_max=16)
    assert args.max_rounds == DEFAULT_MAX_ROUNDS == args.osla.max_rounds and args.step_budget is None
    assert args.osla == OslaConfig(k_init=4, k_max=16) and args.context_size == ValuePriorSettings().context_size
    assert V05Config.__dataclass_fields__["history_steps"].metadata["help"].startswith("Older rows from at most")
    with pytest.warns(FutureWarning, match=r"rollout_budget is deprecated: use budget_per_prompt = 6"):
        old = v05_args(tmp_path, k_max=16, rollout_budget=6 * args.prompts_per_generation)
    assert old.budget_per_prompt == 6 and old.step_budget == 6 * args.prompts_per_generation
    with pytest.warns(FutureWarning, match="osla_prior_var is now osla_var_floor"):
        assert v05_args(tmp_path, k_max=16, osla_prior_var=True).osla_var_floor is True
    with pytest.raises(TypeError, match="osla_var_floor must be True or False"):
        v05_args(tmp_path, osla_var_floor="yes")


@pytest.mark.parametrize("data, message", [
    (dataset(), r"train_dataset has no column 'prior_value' \(prior_source='column'\); its columns: \['prompt'\]"),
    (dataset(4, prior_value=[0.1, 0.2, 1.5, 0.3]),
     r"train_dataset\['prior_value'\]\[2\] = 1.5: the prior must be in \[0, 1\] \(1 bad value\(s\)\)"),
    (dataset(4, prior_value=[0.1, None, 0.2, 0.3]), r"train_dataset\['prior_value'\]\[1\] = nan"),
])
def test_a_bad_prior_column_fails_before_the_model_is_touched(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        V05GRPOTrainer(model="no/such-model-is-loaded", reward_funcs=parity_reward, train_dataset=data,
                       args=v05_args(tmp_path, prior_source="column"))


def test_the_trainer_wants_a_v05_config_and_a_matching_prior_source(tmp_path):
    with pytest.raises(TypeError, match="V05GRPOTrainer needs args=V05Config"):
        V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, args=grpo_args(tmp_path))
    with pytest.raises(ValueError, match="prior_fn is given but prior_source = 'value_model'"):
        V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, args=v05_args(tmp_path), prior_fn=len)


def test_rewards_outside_the_scale_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"rewards\[0\] = 2.0: the summed, weighted reward must lie in \[0, 1\] "
                                         r"\(reward_scale = 'binary'"):
        train(V05GRPOTrainer, v05_args(tmp_path), reward=lambda completions, **kw: [2.0] * len(completions))


# -- checkpoints ---------------------------------------------------------------------------------------------


def test_a_checkpoint_keeps_the_outcome_history_and_a_corrupt_one_falls_back(tmp_path):
    args = v05_args(tmp_path, max_steps=2, save_strategy="steps", save_steps=1)
    first = train(V05GRPOTrainer, args)
    ckpt = tmp_path / "v05" / "checkpoint-2"
    state = json.loads((ckpt / STATE_FILE).read_text())["state"]
    assert state["generation"] == 2 and state["prior"]["history"]["step"] == [0, 0, 1, 1]

    resumed = V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, train_dataset=dataset(),
                             args=v05_args(tmp_path, max_steps=3), processing_class=char_tokenizer())
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.v05_prior.history.step == [0, 0, 1, 1, 2, 2]
    assert resumed.v05_prior.history.pass_rate[:4] == first.v05_prior.history.pass_rate

    (ckpt / STATE_FILE).write_text((ckpt / STATE_FILE).read_text().replace('"generation": 2', '"generation": 7'))
    again = V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, train_dataset=dataset(),
                           args=v05_args(tmp_path, max_steps=3), processing_class=char_tokenizer())
    with pytest.warns(RuntimeWarning, match=r"checkpoint-2/v05_state.json does not match its checksum"):
        again.train(resume_from_checkpoint=str(ckpt))
    assert again.v05_prior.history.step == [0, 0, 1, 1]  # checkpoint-1's history, then this run's step
