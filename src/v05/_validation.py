"""Input checks shared by the public entry points (sklearn's message shape, plus the offending row)."""

from __future__ import annotations

import numpy as np


def py(value):
    """A numpy scalar as the plain Python value, so messages read ``nan`` and ``'b'``, not ``np.float64(nan)``."""
    return value.item() if isinstance(value, np.generic) else value


def as_1d(values, name: str, dtype=None) -> np.ndarray:
    """Return ``values`` as a 1-D array; raise ``ValueError`` naming ``name`` otherwise."""
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    return arr


def check_same_length(**arrays) -> int:
    """Raise if the named arrays differ in length; return the common length."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs have inconsistent lengths: {lengths}")
    return next(iter(lengths.values()), 0)


def check_in_range(values: np.ndarray, name: str, lo: float, hi: float, *, labels=None) -> None:
    """Raise ``ValueError`` for the first entry that is not finite or lies outside ``[lo, hi]``."""
    bad = ~np.isfinite(values) | (values < lo) | (values > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" (group {py(labels[i])!r})" if labels is not None else ""
        raise ValueError(
            f"{name}[{i}] = {py(values[i])!r}{where}: {name} must be finite numbers in [{lo:g}, {hi:g}]"
            f" ({int(bad.sum())} bad value(s) in all)"
        )


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} == {value}, must be >= {minimum}")
    return int(value)


def check_number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 min_open: bool = False, allow_inf: bool = False) -> float:
    """Raise ``TypeError`` unless ``value`` is a real number (not a bool or a string), ``ValueError`` unless it
    is finite (or ``inf`` where allowed) and inside the bounds; return it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    x = float(value)
    low = "" if minimum is None else (f"> {minimum:g}" if min_open else f">= {minimum:g}")
    high = "" if maximum is None else f"<= {maximum:g}"
    allowed = " and ".join(b for b in (low, high) if b) or "finite"
    if np.isnan(x) or (np.isinf(x) and not allow_inf) or (minimum is not None and (x <= minimum if min_open else x < minimum)) \
            or (maximum is not None and x > maximum):
        raise ValueError(f"{name} == {py(value)!r}, must be a {'number' if allow_inf else 'finite number'} {allowed}".rstrip())
    return x


def check_choice(value, name: str, allowed) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed`` (listed in the message)."""
    if isinstance(value, (list, dict, set)) or value not in allowed:
        raise ValueError(f"{name}={value!r}; expected one of {tuple(allowed)}")


def check_bool(value, name: str) -> bool:
    """Raise ``TypeError`` unless ``value`` is a bool (``1`` and ``"true"`` are not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (true or false); got {type(value).__name__} {value!r}")
    return bool(value)


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (the checksum stored beside files we write and
    verified when they are read back)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
