"""Value-model files are verified when read back: checksum, bad tensors, encoder mismatch, training record."""

import copy
import hashlib
import json
import warnings

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from v05.value import ValueModel
from v05.value.store import prompt_fingerprint


@pytest.fixture()
def saved(fitted, tmp_path):
    return fitted.save(tmp_path / "m", command="v05 value fit --table t.jsonl")


def rewrite_weights(folder, **changes):
    """Replace tensors in the weights file and record its new checksum (a deliberate, consistent edit)."""
    tensors = {**load_file(str(folder / "weights.safetensors")), **changes}
    save_file(tensors, str(folder / "weights.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def test_round_trip_keeps_predictions_and_the_training_record(fitted, saved, table):
    config = json.loads((saved / "config.json").read_text())
    assert config["format"] == "v05.value/2" and len(config["weights_sha256"]) == 64 and config["encoder_dim"] == 64
    assert config["training_policies"] == sorted(table.policies)
    loaded = ValueModel.load(saved, cache_dir=False)
    args = (table.prompt[:10].tolist(), table.pass_rate[:10], table.prompt[10:20].tolist())
    np.testing.assert_array_equal(loaded.predict(*args)[0], fitted.predict(*args)[0])
    assert loaded.training_overlap(["pol1", "new"], table.prompt[:5].tolist()) == {"policies": ["pol1"], "prompt_share": 1.0}
    assert loaded.training_overlap(["new"], ["a prompt never seen"]) == {"policies": [], "prompt_share": 0.0}


def test_flipped_bytes_in_the_weights_are_named(saved):
    path = saved / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # inside the last tensor: the file still parses, a number changes
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"weights.safetensors: does not match field 'weights_sha256' of config.json"):
        ValueModel.load(saved)


@pytest.mark.parametrize("value, rule", [(0.0, "> 0"), (-1.0, "> 0"), (np.nan, "> 0"), (np.inf, "> 0")])
def test_a_feature_scale_that_is_not_positive_is_refused_at_load(saved, value, rule):
    scale = load_file(str(saved / "weights.safetensors"))["feature_scale"].copy()
    scale[7] = value
    rewrite_weights(saved, feature_scale=scale)
    with pytest.raises(ValueError, match=rf"tensor 'feature_scale'\[7\] = .*; every value must be finite and {rule}"):
        ValueModel.load(saved)


def test_non_finite_coefficients_are_refused(saved):
    coef = load_file(str(saved / "weights.safetensors"))["coef"].copy()
    coef[0] = np.nan
    rewrite_weights(saved, coef=coef)
    with pytest.raises(ValueError, match=r"tensor 'coef'\[0\] = nan; every value must be finite"):
        ValueModel.load(saved)


def test_an_encoder_mismatch_fails_at_load_not_at_predict(saved):
    config = json.loads((saved / "config.json").read_text())
    config["params"]["encoder"] = "hashing-32"  # weights trained on 64 dimensions
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"field 'n_features' = 65 .* encoder 'hashing-32' gives 32 dimensions \+ 1"):
        ValueModel.load(saved)
    config["params"]["encoder"] = "bert"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"field 'params.encoder': unknown encoder 'bert'"):
        ValueModel.load(saved)


def test_an_encoder_changed_after_fit_fails_with_a_clear_error(fitted, table):
    changed = copy.copy(fitted)
    changed.__dict__.pop("_encoder_obj", None)
    changed.__dict__.pop("_difficulty_memo", None)
    changed.encoder = "hashing-32"
    with pytest.raises(ValueError, match="encoder 'hashing-32' gives 32 dimensions, but the weights were trained on 64"):
        changed.predict(table.prompt[:3].tolist(), table.pass_rate[:3], table.prompt[3:5].tolist())


@pytest.mark.parametrize("params, match", [({"ridge": "abc"}, "ridge must be a number"),
                                           ({"n_pairs": 0}, "n_pairs == 0, must be >= 1"),
                                           ({"stack_prior": -1}, "stack_prior == -1")])
def test_bad_stored_params_name_the_file_and_field(saved, params, match):
    config = json.loads((saved / "config.json").read_text())
    config["params"].update(params)
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=rf"config.json: field 'params': {match}"):
        ValueModel.load(saved)


def test_an_old_format_loads_with_a_warning_and_no_training_record(saved):
    config = json.loads((saved / "config.json").read_text())
    for key in ("weights_sha256", "encoder_dim", "training_policies"):
        del config[key]
    del config["params"]["adapt"]  # v1 files predate the in-context correction
    (saved / "config.json").write_text(json.dumps({**config, "format": "v05.value/1"}))
    with pytest.warns(UserWarning, match="has no checksum; the weights cannot be verified"):
        vm = ValueModel.load(saved)
    assert vm.training_overlap(["pol1"], ["x"]) is None
    assert vm.adapt is False  # predicts as it did when it was written


def test_the_shipped_default_verifies_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vm = ValueModel.load("default")
    assert vm.training_policies_ and len(vm.training_prompt_hash_) > 1000


def test_prompt_fingerprint_is_sorted_unique_and_stable():
    h = prompt_fingerprint(["b", "a", "b"])
    assert h.dtype == np.int64 and len(h) == 2 and np.all(np.diff(h) > 0) and np.all(h >= 0)
    np.testing.assert_array_equal(h, prompt_fingerprint(["a", "b"]))
