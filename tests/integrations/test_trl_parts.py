"""The TRL adapter's small parts on their own: row translation, the scoring rules (against a plain loop), the
prior sources and the checkpointed state."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from v05.baselines import Prior, RewardScale, compute
from v05.data import PassRateTable
from v05.integrations.trl.priors import UNINFORMED, CallablePrior, ColumnPrior, ValueModelSource, check_prior_values
from v05.integrations.trl.rows import (PromptTable, local_rows, merge_outputs, portable_row, process_slice,
                                       prompt_text, scalar_rewards, top_up_rows)
from v05.integrations.trl.scoring import (MIN_SCORABLE, check_rewards_in_scale, planner_rewards, score_step,
                                          step_metrics)
from v05.integrations.trl.state import FILE, read_state, read_state_or_older, write_state
from v05.value import ValueModel

BINARY = RewardScale.parse("binary")

# -- rows ----------------------------------------------------------------------------------------------------


def test_portable_rows_keep_what_json_can_hold_and_need_a_textual_prompt():
    row = {"prompt": [{"role": "user", "content": "hi"}], "answer": "4", "prior_value": 0.5, "image": object()}
    assert portable_row(row) == {"prompt": [{"role": "user", "content": "hi"}], "answer": "4", "prior_value": 0.5}
    with pytest.raises(TypeError, match="the prompt of a row is object"):
        portable_row({"prompt": object()})


def test_prompts_are_grouped_by_content_wherever_they_sit():
    a, b, a2 = {"prompt": "p", "answer": "1"}, {"prompt": "q", "answer": "2"}, {"prompt": "p", "answer": "9"}
    table, group = PromptTable.from_rows([a, b, a, a2, b, a], group_size=3)
    assert table.rows == [a, b, a2] and group.tolist() == [0, 1, 0, 2, 1, 0]
    # a dataset row present twice gives one group per group_size copies, as TRL's positions do
    table, group = PromptTable.from_rows([a] * 4 + [b] * 2, group_size=2)
    assert len(table) == 3 and group.tolist() == [0, 0, 1, 1, 2, 2]


def test_prompt_text_reads_plain_prompts_and_the_last_user_message():
    assert prompt_text("What is 1+1?") == "What is 1+1?"
    chat = [{"role": "user", "content": "old"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "new"}, {"type": "image"}]}]
    assert prompt_text(chat) == "new"
    with pytest.raises(ValueError, match="conversational prompt has no user message"):
        prompt_text([{"role": "system", "content": "s"}])


def test_scalar_rewards_sum_weighted_functions_and_mark_unscorable_rows():
    nan = float("nan")
    per_func = torch.tensor([[1.0, 0.5], [nan, 1.0], [nan, nan]])
    np.testing.assert_array_equal(scalar_rewards(per_func, torch.tensor([1.0, 2.0])), [2.0, 2.0, nan])


def test_rows_are_sliced_per_process_round_by_round():
    assert process_slice(8, 1, 2) == slice(4, 8)
    with pytest.raises(ValueError, match="6 rows do not split evenly over 4 processes"):
        process_slice(6, 0, 4)
    values = np.arange(12)  # round 0: 8 rows, round 1: 4 rows
    assert local_rows(values, [8, 4], 0, 2).tolist() == [0, 1, 2, 3, 8, 9]
    assert local_rows(values, [8, 4], 1, 2).tolist() == [4, 5, 6, 7, 10, 11]


def test_top_up_rows_come_in_contiguous_blocks_per_prompt():
    rows = [{"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}]
    new, group = top_up_rows(rows, np.array([0, 2]), np.array([2, 4]))
    assert [r["prompt"] for r in new] == ["a", "a", "c", "c", "c", "c"] and group.tolist() == [0, 0, 2, 2, 2, 2]
    new[0]["prompt"] = "changed"
    assert rows[0]["prompt"] == "a"  # copies: TRL may write into its rows


def part(prompt_len, completion_len, rows, tokens):
    return {
        "prompt_ids": torch.full((rows, prompt_len), 7), "prompt_mask": torch.ones(rows, prompt_len, dtype=torch.long),
        "completion_ids": torch.full((rows, completion_len), 8),
        "completion_mask": torch.ones(rows, completion_len, dtype=torch.long),
        "advantages": torch.zeros(rows), "num_items_in_batch": torch.tensor(tokens), "old_per_token_logps": None,
    }


def test_outputs_merge_row_wise_with_trl_padding():
    merged = merge_outputs([part(3, 2, 2, 4), part(2, 4, 1, 4)], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[7, 7, 7], [7, 7, 7], [0, 7, 7]]  # left-padded
    assert merged["prompt_mask"][2].tolist() == [0, 1, 1]
    assert merged["completion_ids"].tolist() == [[8, 8, 0, 0], [8, 8, 0, 0], [8, 8, 8, 8]]  # right-padded
    assert merged["completion_mask"][0].tolist() == [1, 1, 0, 0]
    assert merged["num_items_in_batch"].item() == 8 and merged["old_per_token_logps"] is None
    assert len(merged["advantages"]) == 3
    with pytest.raises(NotImplementedError, match="top-ups cannot merge the output 'pixel_values'"):
        merge_outputs([{**part(1, 1, 1, 1), "pixel_values": torch.zeros(1)}] * 2, pad_token_id=0)


# -- scoring -------------------------------------------------------------------------------------------------


def reference_score(rewards, group, n_prompts, estimator, prior):
    """The rules as a plain loop: per prompt, the scorable rows; prompts with >= 2 enter the estimator."""
    rows_of = {j: [i for i in range(len(rewards)) if group[i] == j and not np.isnan(rewards[i])] for j in range(n_prompts)}
    used = sorted(i for rows in rows_of.values() if len(rows) >= MIN_SCORABLE for i in rows)
    advantage = np.zeros(len(rewards))
    if used:
        res = compute(estimator, rewards[used], group[used], prior=None if prior is None else prior[group[used]])
        advantage[used] = np.where(res.keep, res.advantage, 0.0)
    return advantage


@st.composite
def batches(draw):
    n_prompts = draw(st.integers(2, 5))
    sizes = draw(st.lists(st.integers(1, 6), min_size=n_prompts, max_size=n_prompts))
    group = np.repeat(np.arange(n_prompts), sizes)
    group = group[draw(st.permutations(list(range(len(group)))))]
    rewards = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=len(group), max_size=len(group))))
    prior = np.array(draw(st.lists(st.floats(0, 1), min_size=n_prompts, max_size=n_prompts)))
    return rewards, group, n_prompts, prior


@pytest.mark.parametrize("estimator", ["mean", "grpo", "dapo", "v05", "v05_paper", "v05_eb_beta"])
@settings(max_examples=40, deadline=None)
@given(batch=batches())
def test_score_step_follows_its_rules_like_a_plain_loop(estimator, batch):
    rewards, group, n_prompts, prior = batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # undefined fits are covered below
        score = score_step(rewards, group, n_prompts, estimator=estimator, options={}, scale=BINARY, prior=Prior(prior))
    if score.undefined is None:
        np.testing.assert_allclose(score.advantage, reference_score(rewards, group, n_prompts, estimator, prior),
                                   rtol=0, atol=1e-12)
    else:
        assert np.all(score.advantage == 0)
    assert np.all(score.advantage[np.isnan(rewards)] == 0) and np.isfinite(score.advantage).all()
    for j in range(n_prompts):
        mine = rewards[(group == j) & ~np.isnan(rewards)]
        assert score.counts[j] == len(mine)
        assert (np.isnan(score.pass_rate[j]) and len(mine) == 0) or score.pass_rate[j] == pytest.approx(mine.mean())


def test_an_estimator_undefined_on_what_is_left_warns_and_trains_on_zeros():
    rewards = np.array([1.0, 0.0, 1.0, np.nan, 0.0])  # prompt 1 keeps one scorable completion: left out
    group = np.array([0, 0, 0, 1, 1])
    with pytest.warns(RuntimeWarning, match="estimator 'v05_eb_loo' is undefined on this generation batch"):
        score = score_step(rewards, group, 2, estimator="v05_eb_loo", options={}, scale=BINARY, prior=Prior([0.5, 0.5]))
    assert score.undefined and np.all(score.advantage == 0)
    assert step_metrics(score, np.array([3, 2]), 2, 0)["v05/undefined"] == 1.0


def test_the_planner_sees_unscorable_rewards_as_the_prior_and_bad_rewards_are_named():
    pm1 = RewardScale.parse("pm1")
    np.testing.assert_array_equal(planner_rewards(np.array([1.0, np.nan]), np.array([0.9, 0.25]), pm1), [1.0, -0.5])
    with pytest.raises(ValueError, match=r"rewards\[2\] = -1.0: the summed, weighted reward must lie in \[0, 1\] "
                                         r"\(reward_scale = 'binary'; 1 bad value\(s\)\)"):
        check_rewards_in_scale(np.array([0.0, np.nan, -1.0]), BINARY, "binary")


def test_step_metrics_mean_what_the_docs_say():
    rewards = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    prior = np.array([0.0, 0.25])  # prompt 0's prior is far off, prompt 1's is right
    score = score_step(rewards, group, 2, estimator="v05_paper", options={}, scale=BINARY, prior=Prior(prior))
    m = step_metrics(score, np.array([8, 4]), 4, 1, Prior(prior))
    w = compute("v05_paper", rewards, group, prior=prior[group]).weight[[0, 4]]
    assert m["v05/weight_mean"] == pytest.approx(w.mean())
    assert m["v05/prior_rejected_frac"] == np.mean(w > 0.5) == 0.5
    assert m["v05/prior_mse"] == pytest.approx(((1.0 - 0.0) ** 2 + (0.25 - 0.25) ** 2) / 2)
    assert (m["v05/rollouts_per_prompt_mean"], m["v05/rollouts_per_prompt_max"]) == (6.0, 8.0)
    assert m["v05/topup_rounds"] == 1 and m["v05/topup_prompts_frac"] == 0.5
    assert "v05/weight_mean" not in step_metrics(score_step(rewards, group, 2, estimator="grpo", options={},
                                                             scale=BINARY), np.array([4, 4]), 4, 0)


# -- priors --------------------------------------------------------------------------------------------------


def table_of(*prompts, **columns):
    rows = [{"prompt": p, **{k: v[i] for k, v in columns.items()}} for i, p in enumerate(prompts)]
    return PromptTable.from_rows(rows, 1)[0]


def test_prior_values_are_checked_with_the_prompt_named():
    assert check_prior_values([0.2, 1], None, 2, "x")[0].tolist() == [0.2, 1.0]
    with pytest.raises(ValueError, match=r"x\[1\] = -0.1 \(prompt 'b'\): the prior must be in \[0, 1\]"):
        check_prior_values([0.2, -0.1], None, 2, "x", labels=["a", "b"])
    with pytest.raises(ValueError, match=r"x: 1 prior value\(s\) for 2 prompt\(s\)"):
        check_prior_values([0.2], None, 2, "x")
    with pytest.raises(ValueError, match=r"x\[0\] = inf: the prior variance must be finite and >= 0"):
        check_prior_values([0.2], [np.inf], 1, "x")
    with pytest.raises(TypeError, match="x: the prior must be numbers"):
        check_prior_values(["high"], None, 1, "x")


def test_column_and_callable_priors():
    table = table_of("a", "b", prior_value=[0.1, 0.7], v=[0.01, 0.02])
    out = ColumnPrior("prior_value", "v").predict(table, 0, None, None)
    mean, var = out.mean, out.var
    assert mean.tolist() == [0.1, 0.7] and var.tolist() == [0.01, 0.02]
    with pytest.raises(ValueError, match="prompt 'a' has no column 'p2'"):
        ColumnPrior("p2").predict(table, 0, None, None)
    out = CallablePrior(lambda prompts: [len(p) / 10 for p in prompts]).predict(table, 0, None, None)
    mean, var = out.mean, out.var
    assert mean.tolist() == [0.1, 0.1] and var is None
    with pytest.raises(TypeError, match="prior_fn must be callable"):
        CallablePrior(0.5)


@pytest.fixture(scope="module")
def small_value_model():
    """A value model with a hashing encoder, fitted in a blink on a toy table (no MiniLM needed)."""
    texts = [f"sum of {i} and {i + 1}" for i in range(8)]
    t = PassRateTable.from_columns(prompt_id=texts * 2, policy=["p"] * 8 + ["q"] * 8, prompt=texts * 2,
                                   pass_rate=np.linspace(0.1, 0.9, 16))
    return ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=200).fit(t)


def test_the_value_model_cold_start_never_shows_a_prompt_its_own_outcome(small_value_model):
    source = ValueModelSource(small_value_model, context_size=16, history_steps=8, history_block=2)
    table = table_of("sum of 1 and 2", "sum of 3 and 4", "sum of 5 and 6", "sum of 7 and 8")
    counts = np.array([4, 4, 4, 0])
    rates = np.array([0.25, 0.5, 1.0, np.nan])
    first = source.predict(table, 0, rates, counts)
    mean, var = first.mean, first.var
    changed = rates.copy()
    changed[0] = 0.0  # prompt 0 is in the first half: its own prior must not move, the other half's does
    mean2 = source.predict(table, 0, changed, counts).mean
    assert mean2[0] == mean[0] and mean2[2] == mean[2] and mean2[1] != mean[1] and mean2[3] != mean[3]
    assert np.all((mean > 0) & (mean < 1) & (var > 0))
    few = source.predict(table, 0, rates, np.array([4, 0, 0, 0]))
    assert few.mean.tolist() == [UNINFORMED[0]] * 4 and few.var.tolist() == [UNINFORMED[1]] * 4


def test_the_value_model_then_reads_the_run_history(small_value_model):
    source = ValueModelSource(small_value_model, context_size=16, history_steps=8, history_block=2)
    table = table_of("sum of 1 and 2", "sum of 3 and 4")
    source.observe(0, table.texts, np.array([0.0, np.nan]), np.array([4, 0]))  # unseen prompts are not recorded
    assert source.history.prompt == ["sum of 1 and 2"]
    low = source.predict(table, 1, np.array([1.0, 1.0]), np.array([4, 4])).mean  # this batch's outcomes are not read
    source.observe(1, table.texts, np.array([1.0, 1.0]), np.array([4, 4]))
    high = source.predict(table, 2, None, None).mean
    assert np.all(high > low)
    restored = ValueModelSource(small_value_model, context_size=16, history_steps=8, history_block=2)
    restored.load_state_dict(json.loads(json.dumps(source.state_dict())))
    np.testing.assert_array_equal(restored.predict(table, 2, None, None).mean, high)


# -- checkpointed state --------------------------------------------------------------------------------------


def test_state_files_round_trip_and_a_corrupt_one_is_named(tmp_path):
    write_state(tmp_path, {"generation": 3, "prior": {"history": {"step": [0]}}})
    assert read_state(tmp_path) == {"generation": 3, "prior": {"history": {"step": [0]}}}
    path = tmp_path / FILE
    path.write_text(path.read_text().replace('"generation": 3', '"generation": 4'))
    with pytest.raises(ValueError, match=f"{FILE} does not match its checksum"):
        read_state(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is unreadable"):
        read_state(tmp_path)
    with pytest.raises(ValueError, match="is missing"):
        read_state(tmp_path / "nowhere")


def test_a_damaged_checkpoint_falls_back_to_the_newest_intact_older_one(tmp_path):
    for step in (1, 2, 3):
        (tmp_path / f"checkpoint-{step}").mkdir()
        write_state(tmp_path / f"checkpoint-{step}", {"generation": step})
    (tmp_path / "checkpoint-3" / FILE).write_text("garbage")
    (tmp_path / "checkpoint-2" / FILE).unlink()
    with pytest.warns(RuntimeWarning) as caught:
        assert read_state_or_older(tmp_path / "checkpoint-3") == {"generation": 1}
    messages = [str(w.message) for w in caught]
    assert any("checkpoint-3/v05_state.json is unreadable" in m for m in messages)
    assert any("checkpoint-2/v05_state.json is missing" in m for m in messages)
    assert any("resuming the outcome history from the older" in m and m.endswith("checkpoint-1") for m in messages)
    (tmp_path / "checkpoint-1" / FILE).unlink()
    with pytest.warns(RuntimeWarning) as caught:
        assert read_state_or_older(tmp_path / "checkpoint-3") is None
    assert "the outcome history restarts empty" in str(caught[-1].message)
