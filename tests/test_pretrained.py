"""SmolLM2-135M-Instruct loads offline from the installed GGUF, and a corrupt cached copy is rebuilt."""

import shutil

import pytest

from v05.pretrained import SMOLLM2_NAME, load_smollm2, smollm2_dir, smollm2_gguf

pytestmark = pytest.mark.slow


def test_loads_a_trainable_model_with_its_chat_template():
    model, tok = load_smollm2()  # the default cache, shared with the other tests that need the model
    assert smollm2_gguf().is_file()
    assert 1.3e8 < sum(p.numel() for p in model.parameters()) < 1.4e8
    assert getattr(model, "hf_quantizer", None) is None and "quantization_config" not in model.config.to_dict()
    text = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert "What is 2 + 3?" in text and text.rstrip().endswith("assistant")
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|im_end|>")  # the model's ids, not the GGUF's names
    assert tok.eos_token_id == model.generation_config.eos_token_id


def test_a_corrupt_cached_copy_is_named_and_rebuilt(tmp_path):
    folder = tmp_path / SMOLLM2_NAME
    shutil.copytree(smollm2_dir(), folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"is corrupt \(model.safetensors does not match its checksum\); rebuilding it"):
        assert smollm2_dir(tmp_path) == folder
    assert smollm2_dir(tmp_path) == folder  # intact again: no warning
