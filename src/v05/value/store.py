"""Value-model files: ``config.json`` + ``weights.safetensors``, written atomically and verified when read.

Reading never executes code from the files (JSON and safetensors only) and refuses anything that would give
a silent wrong number: a weights file that does not match the SHA-256 recorded in the config (flipped bytes,
a swapped file), missing or non-finite tensors, a feature scale that is not > 0 (it divides), and weights
whose size does not fit the configured encoder (trained with another encoder or dimension). Each error
names the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

FORMAT = "v05.value/2"
OLD_FORMATS = ("v05.value/1",)
"""Older configs carry no checksum and no training-data record; they load with a warning."""
CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"
VECTORS = ("coef", "feature_mean", "feature_scale")
"""Tensors of shape (n_features,) every weight file holds; ``train_prompt_hash`` is optional."""


def shipped_models() -> list[str]:
    """Names of the weight sets shipped in the package."""
    root = resources.files("v05") / "weights" / "value"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())


def prompt_fingerprint(texts) -> np.ndarray:
    """Sorted unique 63-bit hashes (first 8 bytes of SHA-256) of prompt texts, int64: what a model saw."""
    digests = {int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "big") >> 1 for t in texts}
    return np.array(sorted(digests), dtype=np.int64)


def write(path, config: dict, tensors: dict) -> Path:
    """Write the weights, then the config with their checksum, each through a temporary file; returns ``path``."""
    from safetensors.numpy import save

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    config = {"format": FORMAT, **config, "weights_sha256": hashlib.sha256(data).hexdigest()}
    _atomic_write(path / WEIGHTS_FILE, data)
    _atomic_write(path / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(name_or_path, *, params, encoder_dim) -> tuple[Path, dict, dict]:
    """``(folder, config, tensors)`` of a shipped name or a folder written by :func:`write`, verified.

    ``params`` are the names allowed in the config's ``params``; ``encoder_dim(name)`` gives the output
    dimension of the configured encoder (checked against the weights).

    Raises
    ------
    FileNotFoundError
        Unknown name, missing folder or file.
    ValueError
        Malformed, corrupt or inconsistent files (the message names the file and the field).
    """
    folder = resolve(name_or_path)
    config = _read_config(folder / CONFIG_FILE)
    unknown = set(config["params"]) - set(params)
    if unknown:
        raise ValueError(f"{folder / CONFIG_FILE}: field 'params' has unknown names {sorted(unknown)}; known: {list(params)}")
    weights = folder / WEIGHTS_FILE
    if config["format"] in OLD_FORMATS:
        warnings.warn(f"{folder}: format {config['format']!r} has no checksum; the weights cannot be verified "
                      f"(re-save them to get one)", UserWarning, stacklevel=3)
        config["params"].setdefault("adapt", False)  # written before the in-context correction existed: predict as then
    elif _sha256(weights) != config["weights_sha256"]:
        raise ValueError(f"{weights}: does not match field 'weights_sha256' of {CONFIG_FILE} "
                         "(the file is corrupt or was replaced); restore it or retrain")
    name = config["params"].get("encoder", "minilm-l6-v2")
    try:
        dim = encoder_dim(name)
    except ValueError as e:
        raise ValueError(f"{folder / CONFIG_FILE}: field 'params.encoder': {e}") from None
    if config["n_features"] != dim + 1 or config.get("encoder_dim", dim) != dim:
        raise ValueError(f"{folder / CONFIG_FILE}: field 'n_features' = {config['n_features']} (encoder_dim "
                         f"{config.get('encoder_dim')}), but encoder {name!r} gives {dim} dimensions + 1 (log length): "
                         "these weights were trained with another encoder")
    return folder, config, _read_weights(weights, config["n_features"])


def resolve(name_or_path) -> Path:
    """The folder of a shipped name, or the given folder after checking that both files are there."""
    text = str(name_or_path)
    if "/" not in text and "\\" not in text and not Path(text).exists():
        candidate = Path(str(resources.files("v05") / "weights" / "value" / text))
        if not (candidate / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"unknown value model {text!r}; shipped: {shipped_models()}, or pass a directory")
        return candidate
    path = Path(text)
    if not path.is_dir():
        raise FileNotFoundError(f"value model directory {path} does not exist")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: missing {name} (a value model directory holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    return path


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") not in (FORMAT, *OLD_FORMATS):
        raise ValueError(f"{path}: not a value model config (expected \"format\": {FORMAT!r})")
    fields = [("params", dict), ("tau2", (int, float)), ("s2", (int, float)), ("n_features", int), ("n_policies", int),
              ("n_rows", int)]
    if config["format"] == FORMAT:
        fields += [("weights_sha256", str), ("encoder_dim", int)]
    for key, kind in fields:
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            raise ValueError(f"{path}: field {key!r} is missing or has the wrong type ({config.get(key)!r})")
    for key in ("tau2", "s2"):
        if not (np.isfinite(config[key]) and config[key] > 0):
            raise ValueError(f"{path}: field {key!r} = {config[key]!r}, must be a finite number > 0")
    policies = config.get("training_policies")
    if policies is not None and not (isinstance(policies, list) and all(isinstance(p, str) for p in policies)):
        raise ValueError(f"{path}: field 'training_policies' must be a list of policy names")
    return config


def _read_weights(path: Path, n_features: int) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
    out = {}
    for name in VECTORS:
        t = tensors.get(name)
        if t is None or t.shape != (n_features,) or t.dtype.kind != "f":
            shape = None if t is None else t.shape
            raise ValueError(f"{path}: tensor {name!r} has shape {shape}, expected ({n_features},) floats")
        bad = ~np.isfinite(t) | ((t <= 0) if name == "feature_scale" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            rule = "finite and > 0 (it divides the features)" if name == "feature_scale" else "finite"
            raise ValueError(f"{path}: tensor {name!r}[{i}] = {float(t[i])!r}; every value must be {rule}")
        out[name] = t.astype(np.float64)
    hashes = tensors.get("train_prompt_hash")
    if hashes is not None:
        if hashes.ndim != 1 or hashes.dtype != np.int64:
            raise ValueError(f"{path}: tensor 'train_prompt_hash' must be 1-D int64, got {hashes.dtype} {hashes.shape}")
        out["train_prompt_hash"] = hashes
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
