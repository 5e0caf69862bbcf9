"""The pass-rate table: the project's common data format, one row per (prompt, policy).

Stored as JSONL or CSV. Columns (``docs/data.md``): ``prompt_id`` (str, required), ``policy`` (str,
required), ``pass_rate`` (float in [0, 1], required), ``n_samples`` (int >= 1), ``prompt`` (str), ``prior``
(float in [0, 1]), ``split`` (str). Reading validates every row and names file, row and column in errors;
an unknown column (a misspelled ``prior``) and a repeated (prompt_id, policy) pair are errors, not ignored.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from v05.data.files import TableError, csv_records, json_rows

REQUIRED = ("prompt_id", "policy", "pass_rate")
OPTIONAL = ("n_samples", "prompt", "prior", "split")
COLUMNS = REQUIRED + OPTIONAL


@dataclass(frozen=True)
class PassRateTable:
    """Columns of a pass-rate table as numpy arrays; optional columns are ``None`` when absent.

    Examples
    --------
    >>> t = PassRateTable.from_columns(prompt_id=["a", "b"], policy=["p", "p"], pass_rate=[0.25, 1.0])
    >>> len(t), t.select(t.pass_rate > 0.5).prompt_id.tolist()
    (2, ['b'])
    """

    prompt_id: np.ndarray  # str objects
    policy: np.ndarray  # str objects
    pass_rate: np.ndarray
    n_samples: np.ndarray | None = None
    prompt: np.ndarray | None = None
    prior: np.ndarray | None = None
    split: np.ndarray | None = None

    @classmethod
    def from_columns(cls, *, source: str = "<columns>", **columns) -> "PassRateTable":
        """Build a validated table from sequences; ``source`` names the origin in error messages (rows from 0)."""
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise TableError(f"{source}: unknown column(s) {sorted(unknown)}; known: {list(COLUMNS)}")
        for name in REQUIRED:
            if columns.get(name) is None:
                raise TableError(f"{source}: missing required column {name!r}")
        lengths = {k: len(v) for k, v in columns.items() if v is not None}
        if len(set(lengths.values())) > 1:
            raise TableError(f"{source}: columns have different lengths: {lengths}")
        rows = range(lengths["pass_rate"])
        arrays = {name: _convert(name, list(values), source, rows) for name, values in columns.items()
                  if values is not None}
        _check_unique(arrays, source, rows)
        return cls(**arrays)

    def __len__(self) -> int:
        return len(self.pass_rate)

    def select(self, index) -> "PassRateTable":
        """Rows picked by a boolean mask or integer indices, as a new table."""
        return PassRateTable(
            **{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index]) for f in fields(self)}
        )

    def with_column(self, name: str, values) -> "PassRateTable":
        """A copy with column ``name`` set (validated like a file column)."""
        if name not in COLUMNS:
            raise TableError(f"unknown column {name!r}; known: {list(COLUMNS)}")
        if len(values) != len(self):
            raise TableError(f"column {name!r} has {len(values)} values for a table of {len(self)} rows")
        converted = _convert(name, list(values), "<with_column>", range(len(values)))
        return PassRateTable(**{**self.columns(), name: converted})

    def columns(self) -> dict[str, np.ndarray]:
        """The present columns, by name, in the canonical order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @property
    def policies(self) -> list[str]:
        """Distinct policies in order of first appearance."""
        return list(dict.fromkeys(self.policy.tolist()))


def _convert(name: str, values: list, source: str, rows: Sequence[int]) -> np.ndarray:
    """Check and convert one column; ``rows[i]`` is the row number of ``values[i]`` in errors."""
    if name in ("pass_rate", "prior"):
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            out[i] = _as_unit_float(v, name, source, rows[i])
        return out
    if name == "n_samples":
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            out[i] = _as_count(v, source, rows[i])
        return out
    for i, v in enumerate(values):
        if not isinstance(v, str) or (name in REQUIRED and v == ""):
            raise TableError(f"{source}, row {rows[i]}, column {name!r}: expected a non-empty string, got {v!r}")
    out = np.empty(len(values), dtype=object)  # object, not '<U': long prompt texts would pad every row
    out[:] = values
    return out


def _as_unit_float(v, name: str, source: str, row: int) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise TableError(f"{source}, row {row}, column {name!r}: expected a number in [0, 1], got {v!r}") from None
    if isinstance(v, bool) or not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise TableError(f"{source}, row {row}, column {name!r}: expected a number in [0, 1], got {v!r}")
    return x


def _as_count(v, source: str, row: int) -> int:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    if isinstance(v, bool) or not math.isfinite(x) or x != int(x) or x < 1:
        raise TableError(f"{source}, row {row}, column 'n_samples': expected an integer >= 1, got {v!r}")
    return int(x)


def _check_unique(columns: dict[str, np.ndarray], source: str, rows: Sequence[int]) -> None:
    """Each (prompt_id, policy) pair appears once; a repeat is an error naming both rows, even with the same
    values (a silent merge would pick one of two conflicting pass rates, a silent keep would count the prompt
    twice in every benchmark)."""
    seen: dict[tuple, int] = {}
    for i, key in enumerate(zip(columns["prompt_id"].tolist(), columns["policy"].tolist())):
        j = seen.setdefault(key, i)
        if j != i:
            a, b = columns["pass_rate"][j], columns["pass_rate"][i]
            what = f"conflicting pass rates {a:g} and {b:g}" if a != b else f"pass_rate {a:g} in both"
            raise TableError(f"{source}, rows {rows[j]} and {rows[i]}: prompt_id {key[0]!r} of policy {key[1]!r} "
                             f"appears twice ({what}); each (prompt_id, policy) pair must appear once")


def _rows_to_table(rows: list[dict], numbers: list[int], source: str) -> PassRateTable:
    """Validate raw row dicts (all strings for CSV, JSON values for JSONL) into a table; ``numbers[i]`` is the
    row number of ``rows[i]`` in the file."""
    if not rows:
        raise TableError(f"{source}: the table has no rows")
    header = rows[0].keys()
    for row, n in zip(rows, numbers):
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise TableError(f"{source}, row {n}: unknown column(s) {unknown}; known: {list(COLUMNS)} (a misspelled "
                             "column would otherwise be ignored)")
        if row.keys() != header:
            raise TableError(f"{source}, row {n}: columns differ from row {numbers[0]} ({sorted(set(row) ^ set(header))})")
    for name in REQUIRED:
        if name not in header:
            raise TableError(f"{source}: missing required column {name!r} (found {sorted(header)})")
    columns = {}
    for name in (c for c in COLUMNS if c in header):
        values = []
        for row, n in zip(rows, numbers):
            value = row[name]
            if value is None or (name in OPTIONAL and value == "" and name != "prompt"):
                raise TableError(f"{source}, row {n}, column {name!r}: missing value")
            if name in ("prompt_id", "policy") and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            values.append(value)
        columns[name] = _convert(name, values, source, numbers)
    _check_unique(columns, source, numbers)
    return PassRateTable(**columns)


def read_jsonl(path: Path) -> PassRateTable:
    """Read a JSONL pass-rate table; rows are numbered as lines in the file, from 1."""
    numbered = list(json_rows(path))
    return _rows_to_table([row for _, row in numbered], [n for n, _ in numbered], str(path))


def read_csv(path: Path) -> PassRateTable:
    """Read a CSV pass-rate table with a header; rows are numbered as lines in the file (the header is row 1)."""
    records = csv_records(path)
    _, header = next(records, (1, []))
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise TableError(f"{path}, row 1: column(s) {repeated} appear more than once in the header")
    rows, numbers = [], []
    for n, fields_ in records:
        if len(fields_) != len(header):
            raise TableError(f"{path}, row {n}: wrong number of fields for the header ({len(fields_)}, the header "
                             f"has {len(header)})")
        rows.append(dict(zip(header, fields_)))
        numbers.append(n)
    return _rows_to_table(rows, numbers, str(path))


def load_table(path) -> PassRateTable:
    """Read a pass-rate table from a ``.jsonl``/``.json`` or ``.csv`` file.

    Raises
    ------
    TableError
        If the file is missing, of unknown type, or any row is malformed (the message names file, row, column).
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl(path)
    if suffix == ".csv":
        return read_csv(path)
    raise TableError(f"{path}: unknown table format {suffix!r}; use .jsonl or .csv")


def save_table(table: PassRateTable, path) -> Path:
    """Write ``table`` as JSONL or CSV (by suffix); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = table.columns()
    if path.suffix.lower() == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(list(cols))
            writer.writerows(zip(*(c.tolist() for c in cols.values())))
    elif path.suffix.lower() in (".jsonl", ".json"):
        with open(path, "w", encoding="utf-8") as f:
            names = list(cols)
            for values in zip(*(c.tolist() for c in cols.values())):
                f.write(json.dumps(dict(zip(names, values)), ensure_ascii=False) + "\n")
    else:
        raise TableError(f"{path}: unknown table format {path.suffix!r}; use .jsonl or .csv")
    return path
