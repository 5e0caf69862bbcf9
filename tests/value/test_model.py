import copy
import hashlib
import json

import numpy as np
import pytest

from v05.data import PassRateTable
from v05.value import NotFittedError, ValueModel
from v05.stats import intra_context_auc


def context_of(table, policy="pol2", n=40):
    rows = np.flatnonzero(table.policy == policy)
    return table.prompt[rows[:n]].tolist(), table.pass_rate[rows[:n]], table.prompt[rows[n:]].tolist(), table.pass_rate[rows[n:]]


def test_init_only_stores_arguments():
    vm = ValueModel(encoder="hashing-32", ridge=0.5, rank_weight=0.1, n_pairs=7, stack_prior=2.0, adapt=False,
                    correction="surface", random_state=3, cache_dir=False)
    assert vm.get_params() == {"encoder": "hashing-32", "ridge": 0.5, "rank_weight": 0.1, "n_pairs": 7,
                               "stack_prior": 2.0, "adapt": False, "correction": "surface", "random_state": 3,
                               "cache_dir": False}
    assert not [k for k in vars(vm) if k.endswith("_")]


def test_fit_returns_self_and_predicts_in_range(table):
    vm = ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=2000)
    assert vm.fit(table) is vm
    assert vm.tau2_ > 0 and vm.s2_ > 0 and vm.n_policies_ == 4
    ctx, ctx_p, tgt, tgt_p = context_of(table)
    mean, var = vm.predict(ctx, ctx_p, tgt)
    assert mean.shape == var.shape == (len(tgt),)
    assert np.all((mean > 0) & (mean < 1) & (var > 0))
    assert intra_context_auc(mean, tgt_p, np.zeros(len(tgt))) > 0.7  # difficulty is written in the text


def test_ability_is_read_from_context(fitted, table):
    ctx, ctx_p, tgt, _ = context_of(table)
    low, _ = fitted.predict(ctx, np.clip(ctx_p - 0.3, 0, 1), tgt)
    high, _ = fitted.predict(ctx, np.clip(ctx_p + 0.3, 0, 1), tgt)
    assert np.all(high > low)


def test_variance_is_largest_cold_and_shrinks_with_history(fitted, tmp_path):
    # a flat text prior and pass rates of 0.5 keep the mean at 0.5, so only the evidence changes the variance
    fitted = ValueModel.load(fitted.save(tmp_path / "m"), cache_dir=False)
    fitted.coef_ = np.zeros_like(fitted.coef_)
    ctx = [f"context prompt {i}" for i in range(30)]
    tgt = ["target prompt one", "target prompt two"]
    var = []
    for k in range(5):
        pols = [f"old{j}" for j in range(4) for _ in range(31)][: 31 * k]
        texts = ([*ctx[:30], tgt[0]] * 4)[: 31 * k]
        history = None if k == 0 else PassRateTable.from_columns(
            prompt_id=texts, policy=pols, pass_rate=np.full(31 * k, 0.5), prompt=texts, n_samples=np.full(31 * k, 8))
        mean, v = fitted.predict(ctx, np.full(30, 0.5), tgt, history=history)
        np.testing.assert_allclose(mean, 0.5, atol=0.02)
        var.append(v)
    var = np.array(var)  # (k, target)
    assert np.all(np.diff(var[:, 0]) < 0)  # target one gains a row of history per step
    np.testing.assert_allclose(var[:, 1], var[0, 1], rtol=0.02)  # target two stays cold


@pytest.mark.parametrize("adapt, shrink", [(False, 0.8), (True, 0.95)])
def test_history_shrinks_variance_on_real_like_data(fitted, table, adapt, shrink):
    # adapting in context already explains much of this table's text-readable difficulty: history adds less
    vm = copy.copy(fitted)
    vm.adapt = adapt
    ctx, ctx_p, tgt, _ = context_of(table, "pol3")
    same = table.select(table.policy == "pol0")
    other_prompts = same.select(~np.isin(same.prompt, tgt))
    _, cold = vm.predict(ctx, ctx_p, tgt)
    _, with_other = vm.predict(ctx, ctx_p, tgt, history=other_prompts)
    _, with_same = vm.predict(ctx, ctx_p, tgt, history=same)
    assert with_same.mean() < shrink * cold.mean()
    np.testing.assert_allclose(with_other, cold, rtol=0.25)


def test_history_moves_the_prediction_toward_other_policies(fitted, table):
    ctx, ctx_p, tgt, _ = context_of(table, "pol1")
    rows = np.flatnonzero(table.policy == "pol0")
    rates = np.where(np.isin(table.prompt[rows], tgt), 1.0, table.pass_rate[rows])  # targets look easy for pol0
    easy = PassRateTable.from_columns(prompt_id=table.prompt_id[rows], policy=table.policy[rows], pass_rate=rates,
                                      prompt=table.prompt[rows], n_samples=np.full(len(rows), 16))
    assert np.all(fitted.predict(ctx, ctx_p, tgt, history=easy)[0] > fitted.predict(ctx, ctx_p, tgt)[0])


def test_save_load_round_trip(fitted, table, tmp_path):
    fitted.save(tmp_path / "m", command="v05 value fit --table t.jsonl --out m")
    loaded = ValueModel.load(tmp_path / "m", cache_dir=False)
    ctx, ctx_p, tgt, _ = context_of(table)
    for a, b in zip(fitted.predict(ctx, ctx_p, tgt, history=table), loaded.predict(ctx, ctx_p, tgt, history=table)):
        np.testing.assert_array_equal(a, b)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training_command"].startswith("v05 value fit")


def test_load_can_switch_the_in_context_correction(fitted, table, tmp_path):
    """``adapt`` is a prediction-time switch: loading with it overridden gives the model fitted with that flag."""
    fitted.save(tmp_path / "m")
    ctx, ctx_p, tgt, _ = context_of(table)
    for flag in (False, True):
        loaded = ValueModel.load(tmp_path / "m", adapt=flag, cache_dir=False)
        reference = copy.deepcopy(fitted)
        reference.adapt = flag
        assert loaded.adapt is flag
        for a, b in zip(reference.predict(ctx, ctx_p, tgt), loaded.predict(ctx, ctx_p, tgt)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="adapt must be True or False; got str 'yes'"):
        ValueModel.load(tmp_path / "m", adapt="yes", cache_dir=False)


@pytest.mark.parametrize(
    "args, error, match",
    [
        (([], [], ["t"]), ValueError, "context is empty"),
        ((["a", "b"], [0.5], ["t"]), ValueError, "1 values for 2 context_prompts"),
        ((["a", "b"], [0.5, 1.5], ["t"]), ValueError, r"context_pass_rates\[1\] = 1.5"),
        ((["a"], [np.nan], ["t"]), ValueError, r"context_pass_rates\[0\] = nan"),
        ((["a"], [0.5], "t"), TypeError, "not a single str"),
        ((["a", 3], [0.5, 0.5], ["t"]), TypeError, r"context_prompts\[1\] is int"),
    ],
)
def test_bad_inputs_raise_clear_errors(fitted, args, error, match):
    with pytest.raises(error, match=match):
        fitted.predict(*args)


def test_bad_history_and_sample_counts(fitted):
    no_text = PassRateTable.from_columns(prompt_id=["a"], policy=["p"], pass_rate=[0.5])
    with pytest.raises(ValueError, match="history has no 'prompt' column"):
        fitted.predict(["a"], [0.5], ["b"], history=no_text)
    with pytest.raises(TypeError, match="PassRateTable or None"):
        fitted.predict(["a"], [0.5], ["b"], history={"a": 0.5})
    with pytest.raises(ValueError, match=r"context_n_samples\[0\] = 0.0"):
        fitted.predict(["a"], [0.5], ["b"], context_n_samples=0)
    with pytest.raises(ValueError, match=r"context_n_samples has shape \(2,\); expected a number or 1 values"):
        fitted.predict(["a"], [0.5], ["b"], context_n_samples=[4, 4])


def test_not_fitted_and_bad_fit_arguments(table):
    with pytest.raises(NotFittedError, match="call fit"):
        ValueModel(encoder="hashing-32").predict(["a"], [0.5], ["b"])
    with pytest.raises(ValueError, match="at least 2 policies"):
        ValueModel(encoder="hashing-32", cache_dir=False).fit(table.select(table.policy == "pol0"))
    with pytest.raises(ValueError, match="stack_prior == 0"):
        ValueModel(encoder="hashing-32", stack_prior=0).fit(table)
    with pytest.raises(ValueError, match="rank_weight == 2"):
        ValueModel(encoder="hashing-32", rank_weight=2).fit(table)
    with pytest.raises(TypeError, match=r"tables\[0\] is dict"):
        ValueModel(encoder="hashing-32").fit({})


def test_load_refuses_unknown_missing_and_malformed(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="unknown value model 'nope'; shipped: \\['default'\\]"):
        ValueModel.load("nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ValueModel.load(tmp_path / "absent")
    good = fitted.save(tmp_path / "good")
    config = json.loads((good / "config.json").read_text())

    def variant(name, config_text=None, weights=None):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(config_text if config_text is not None else json.dumps(config))
        (d / "weights.safetensors").write_bytes(weights if weights is not None else (good / "weights.safetensors").read_bytes())
        return d

    (tmp_path / "no_weights").mkdir()
    (tmp_path / "no_weights" / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="missing weights.safetensors"):
        ValueModel.load(tmp_path / "no_weights")
    with pytest.raises(ValueError, match="not valid JSON"):
        ValueModel.load(variant("bad_json", config_text="{"))
    with pytest.raises(ValueError, match="not a value model config"):
        ValueModel.load(variant("bad_format", config_text=json.dumps({**config, "format": "other"})))
    with pytest.raises(ValueError, match="'s2' = -1"):
        ValueModel.load(variant("bad_s2", config_text=json.dumps({**config, "s2": -1.0})))
    with pytest.raises(ValueError, match=r"field 'params' has unknown names \['__class__'\]"):
        ValueModel.load(variant("bad_params", config_text=json.dumps({**config, "params": {"__class__": "os.system"}})))
    with pytest.raises(ValueError, match="field 'n_features' = 3"):
        ValueModel.load(variant("bad_shape", config_text=json.dumps({**config, "n_features": 3})))
    pickled = b"\x80\x04\x95" + b"cos\nsystem\n" + b"\x00" * 32  # a pickle is not a safetensors file
    with pytest.raises(ValueError, match="does not match field 'weights_sha256'"):
        ValueModel.load(variant("pickle", weights=pickled))
    digest = hashlib.sha256(pickled).hexdigest()  # even with a matching checksum it is never unpickled
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        ValueModel.load(variant("pickle_sum", config_text=json.dumps({**config, "weights_sha256": digest}), weights=pickled))


def test_text_difficulty_memo_is_reset_by_fit():
    from v05_testing.tables import arithmetic_table

    table = arithmetic_table()
    vm = ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=500).fit(table)
    texts = sorted(set(table.prompt.tolist()))[:5]
    before = vm.text_difficulty(texts)
    assert np.array_equal(vm.text_difficulty(texts), before)  # served from the memo
    vm.ridge = 3.0
    vm.fit(table)
    assert not np.allclose(vm.text_difficulty(texts), before)  # a new fit, new difficulties
