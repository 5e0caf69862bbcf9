import numpy as np
import pytest

from v05.value.embed import HashingEncoder, MiniLMEncoder, get_encoder


def test_hashing_encoder_is_deterministic_and_unit_norm():
    enc = HashingEncoder(64)
    x = enc.encode(["add two numbers", "prove the lemma", "add two numbers"], cache_dir=False)
    assert x.shape == (3, 64) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(x[0], x[2])
    assert not np.allclose(x[0], x[1])


def test_cache_is_written_then_read(tmp_path, monkeypatch):
    enc = HashingEncoder(32)
    first = enc.encode(["alpha", "beta"], cache_dir=tmp_path)
    files = sorted(tmp_path.rglob("*.npy"))
    assert len(files) == 2 and all(f.parent.parent.name == "hashing-32" for f in files)
    monkeypatch.setattr(enc, "_encode", lambda texts: pytest.fail(f"cache miss for {texts}"))
    np.testing.assert_array_equal(enc.encode(["beta", "alpha"], cache_dir=tmp_path), first[::-1])


def test_cache_ignores_files_of_the_wrong_shape(tmp_path):
    enc = HashingEncoder(32)
    enc.encode(["gamma"], cache_dir=tmp_path)
    (path,) = tmp_path.rglob("*.npy")
    np.save(path, np.zeros(5, dtype=np.float32))
    assert enc.encode(["gamma"], cache_dir=tmp_path).shape == (1, 32)


def test_bad_inputs_raise():
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        HashingEncoder(32).encode(["ok", 3], cache_dir=False)
    with pytest.raises(ValueError, match="must be an int >= 8"):
        HashingEncoder(4)
    with pytest.raises(ValueError, match="unknown encoder 'bert'"):
        get_encoder("bert")


def test_minilm_encoder_offline(tmp_path):
    enc = get_encoder("minilm-l6-v2")
    assert isinstance(enc, MiniLMEncoder)
    x = enc.encode(["What is 2 + 2?", "Compute the sum of 2 and 2.", "Name the capital of France."], cache_dir=tmp_path)
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    assert x[0] @ x[1] > x[0] @ x[2]


class SlowHashing(HashingEncoder):
    slow = True  # stands in for a neural encoder


def test_a_slow_encoder_shows_a_progress_bar_on_its_first_pass_only(tmp_path, capsys):
    from v05.value import ValueModel
    from v05.value.embed import PROGRESS_MIN_TEXTS

    texts = [f"prompt number {i}" for i in range(PROGRESS_MIN_TEXTS + 5)]
    SlowHashing(32).encode(texts, cache_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "embedding prompts (hashing-32)" in err and f"{len(texts)}/{len(texts)}" in err
    SlowHashing(32).encode(texts, cache_dir=tmp_path, progress=True)  # cached: nothing to show
    HashingEncoder(16).encode(texts, cache_dir=False, progress=True)  # few or fast: no bar either
    SlowHashing(32).encode(texts[:3], cache_dir=False, progress=True)
    assert capsys.readouterr().err == ""
    vm = ValueModel(encoder="hashing-32", cache_dir=tmp_path / "vm")
    vm._encoder_obj, vm._memo = SlowHashing(32), {}
    vm.embed(texts)  # the model asks for a bar whenever its encoder is slow
    assert "embedding prompts" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_lm():
    """A randomly initialised 4-layer Llama (built from a config) with SmolLM2's real tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from v05.pretrained import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2)
    return LlamaForCausalLM(config).eval(), tokenizer


def test_causal_lm_encoder_matches_a_plain_forward_pass(tiny_lm):
    import torch

    from v05.value.embed import CausalLMEncoder

    model, tokenizer = tiny_lm
    texts = ["What is 2 + 2?", "x", "Prove that the sum of the first n odd numbers is n squared, for every n."]
    enc = CausalLMEncoder(model, tokenizer, layer=2, name="tiny-l2")
    later = model.model.layers[3].register_forward_hook(lambda *a: pytest.fail("layer 4 ran"))
    try:
        x = enc.encode(texts, cache_dir=False)
    finally:
        later.remove()
    assert x.shape == (3, 32) and x.dtype == np.float32
    for i, text in enumerate(texts):  # one text at a time, no padding, every hidden state returned
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.inference_mode():
            h = model.model(input_ids=ids, output_hidden_states=True).hidden_states[2][0]  # (n_tokens, 32)
        ref = h[1:].mean(0) if len(h) > 1 else h[0]
        np.testing.assert_allclose(x[i], (ref / ref.norm()).numpy(), atol=2e-6)
    with pytest.raises(ValueError, match=r"layer == 5, must be an int in \[1, 4\]"):
        CausalLMEncoder(model, tokenizer, layer=5, name="bad")


def test_smollm2_encoder_names_its_layer_without_loading_the_model():
    from v05.value.embed import SmolLM2Encoder

    enc = get_encoder("smollm2-135m-l15")
    assert isinstance(enc, SmolLM2Encoder) and enc.name == "smollm2-135m-l15" and enc.dim == 576 and enc.model is None
    assert get_encoder("smollm2-135m-l30").layer == 30
    with pytest.raises(ValueError, match=r"SmolLM2 layer == 31, must be an int in \[1, 30\]"):
        get_encoder("smollm2-135m-l31")


@pytest.mark.slow
def test_smollm2_encoder_offline(tmp_path):
    x = get_encoder("smollm2-135m-l15").encode(["What is 2 + 2?", "Compute the sum of 2 and 2.",
                                                "Name the capital of France."], cache_dir=tmp_path)
    assert x.shape == (3, 576)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    assert x[0] @ x[1] > x[0] @ x[2]
    assert len(list((tmp_path / "smollm2-135m-l15").rglob("*.npy"))) == 3
