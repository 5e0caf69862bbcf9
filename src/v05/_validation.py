"""Input checks shared by the public entry points: one wording and one error type for every user-facing check.

A wrong type raises ``TypeError``, a wrong value ``ValueError``; messages have scikit-learn's shape
(``k_max == 3, must be >= 4``) plus the offending row where there is one (``rewards[12] = nan (group 'b'): ...``).
Declared option specs (:class:`Choice`, :class:`Number`, :class:`Integer`, :class:`Flag`) let a component
state its keyword options' checks once, so that a configuration is checked before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def py(value):
    """A numpy scalar as the plain Python value, so messages read ``nan`` and ``'b'``, not ``np.float64(nan)``."""
    return value.item() if isinstance(value, np.generic) else value


def as_1d(values, name: str, dtype=None) -> np.ndarray:
    """Return ``values`` as a 1-D array (of ``dtype`` if given); ``TypeError`` naming ``name`` if they are not
    of that type (strings are not numbers, even ``"0.5"``), ``ValueError`` if they are not 1-D."""
    try:
        arr = np.asarray(values)
        if dtype is not None:
            if np.dtype(dtype).kind in "fiu" and (arr.dtype.kind in "USb" or (arr.dtype == object and not all(
                    isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_)) for x in arr.flat))):
                raise TypeError
            arr = arr.astype(dtype, copy=False)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of {np.dtype(dtype).name} numbers; got {_short(values)}") from None
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
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {_short(value)}")
    if value < minimum:
        raise ValueError(f"{name} == {py(value)}, must be >= {minimum}")
    return int(value)


def check_number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 min_open: bool = False, allow_inf: bool = False) -> float:
    """Raise ``TypeError`` unless ``value`` is a real number (not a bool or a string), ``ValueError`` unless it
    is finite (or ``inf`` where allowed) and inside the bounds; return it as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {_short(value)}")
    x = float(value)
    if np.isnan(x) or (np.isinf(x) and not allow_inf) or (minimum is not None and (x <= minimum if min_open else x < minimum)) \
            or (maximum is not None and x > maximum):
        raise ValueError(f"{name} == {py(value)!r}, must be {describe_number(minimum, maximum, min_open, allow_inf)}")
    return x


def describe_number(minimum=None, maximum=None, min_open=False, allow_inf=False) -> str:
    """What :func:`check_number` accepts, in words (``a finite number >= 0``)."""
    low = "" if minimum is None else (f"> {minimum:g}" if min_open else f">= {minimum:g}")
    high = "" if maximum is None else f"<= {maximum:g}"
    bounds = " and ".join(b for b in (low, high) if b)
    kind = "a number" if allow_inf else "a finite number"
    return f"{kind} {bounds}".rstrip() + (" or inf" if allow_inf else "")


def check_bool(value, name: str) -> bool:
    """Raise ``TypeError`` unless ``value`` is a bool (``"false"`` or ``0`` are not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_short(value)}")
    return bool(value)


def check_known_keys(keys, known, where: str, *, prefix: str = "") -> None:
    """Raise ``ValueError`` naming every key of ``keys`` that is not in ``known`` (a misspelled setting is an
    error, never ignored); ``prefix`` qualifies the names as the user wrote them (``osla.`` for ``osla.k_mx``)."""
    unknown = sorted(str(k) for k in keys if k not in known)
    if unknown:
        raise ValueError(f"unknown setting(s) {[prefix + k for k in unknown]}; {where} settings: {list(known)}")


def check_choice(value, name: str, allowed) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed`` (listed in the message); ``TypeError`` if it
    is not even of an allowed type (a list or a dict where a name is expected)."""
    allowed = tuple(allowed)
    if not any(isinstance(value, type(a)) for a in allowed):
        raise TypeError(f"{name} must be one of {allowed}; got {_short(value)}")
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; expected one of {allowed}")


def check_group(group) -> np.ndarray:
    """Group ids as a 1-D array, with one id type for every rollout and no NaN.

    Ids may be ints, strings, bytes or finite floats. Mixed types raise ``TypeError`` (``1`` and ``"1"`` would
    otherwise become one group once numpy converts them); NaN ids raise ``ValueError`` (they would all fall
    into one group). Both messages name the rows.
    """
    arr = as_1d(group, "group")
    if arr.dtype.kind not in "iufUSO":
        raise TypeError(f"group ids must be ints or strings; got dtype {arr.dtype}")
    if arr.dtype == object or not isinstance(group, np.ndarray):
        kinds = {_id_kind(t) for t in set(map(type, arr if arr.dtype == object else group))}
        if None in kinds or len(kinds) > 1:
            _raise_mixed_ids(arr if arr.dtype == object else np.asarray(group, dtype=object))
        if kinds == {"float"}:
            arr = arr.astype(np.float64)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"group[{i}] = {py(arr[i])!r}: group ids must not be NaN or infinite (all NaN ids would "
                         "become one group)")
    return arr


def _id_kind(t: type) -> str | None:
    if issubclass(t, (bool, np.bool_)):
        return None
    for kind, types in (("int", (int, np.integer)), ("float", (float, np.floating)), ("str", str), ("bytes", bytes)):
        if issubclass(t, types):
            return kind
    return None


def _raise_mixed_ids(ids: np.ndarray):
    first: dict[str | None, int] = {}
    for i, value in enumerate(ids.tolist()):
        first.setdefault(_id_kind(type(value)), i)
    if None in first:
        i = first[None]
        raise TypeError(f"group[{i}] = {ids[i]!r} ({type(ids[i]).__name__}): group ids must be ints, strings or "
                        "finite floats")
    (a, i), (b, j) = sorted(first.items(), key=lambda kv: kv[1])[:2]
    raise TypeError(f"group ids mix {a} and {b} (group[{i}] = {ids[i]!r}, group[{j}] = {ids[j]!r}); use one type "
                    "for every id, or 1 and '1' would be one group")


def _short(value, limit: int = 60) -> str:
    """``type value`` for messages, the value's repr cut to ``limit`` characters."""
    text = repr(py(value))
    return f"{type(value).__name__} {text if len(text) <= limit else text[:limit] + '...'}"


# -- declared option specs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (names)."""

    allowed: tuple
    hint: str = ""

    def check(self, value, name: str):
        _with_hint(lambda: check_choice(value, name, self.allowed), self.hint)
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(repr(a) for a in self.allowed)


@dataclass(frozen=True)
class Number:
    """A real number within bounds; ``optional`` also allows ``None`` (meaning: fit or derive it)."""

    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    allow_inf: bool = False
    optional: bool = False
    hint: str = ""

    def check(self, value, name: str):
        if value is None and self.optional:
            return None
        return _with_hint(lambda: check_number(value, name, minimum=self.minimum, maximum=self.maximum,
                                               min_open=self.min_open, allow_inf=self.allow_inf), self.hint)

    def describe(self) -> str:
        text = describe_number(self.minimum, self.maximum, self.min_open, self.allow_inf)
        return f"None or {text}" if self.optional else text


@dataclass(frozen=True)
class Integer:
    """An int >= ``minimum`` (a bool or a float such as ``2.5`` is not one)."""

    minimum: int = 0
    hint: str = ""

    def check(self, value, name: str) -> int:
        return _with_hint(lambda: check_positive_int(value, name, self.minimum), self.hint)

    def describe(self) -> str:
        return f"an int >= {self.minimum}"


@dataclass(frozen=True)
class Flag:
    """True or False."""

    hint: str = ""

    def check(self, value, name: str) -> bool:
        return _with_hint(lambda: check_bool(value, name), self.hint)

    def describe(self) -> str:
        return "True or False"


def _with_hint(check, hint: str):
    """Run ``check()``; append ``(hint)`` to the message of the error it raises."""
    try:
        return check()
    except (TypeError, ValueError) as e:
        if not hint:
            raise
        raise type(e)(f"{e} ({hint})") from None


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (the checksum stored beside files we write and
    verified when they are read back)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
