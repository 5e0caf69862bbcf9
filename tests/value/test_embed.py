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
