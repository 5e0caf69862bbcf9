"""Reading text data files so that every failure names the file and the row: undecodable bytes, invalid JSON,
malformed CSV (a field longer than csv's limit included).

Rows are line numbers in the file, counted from 1 (a CSV record that spans lines is named by its first line).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator


class TableError(ValueError):
    """A pass-rate table file or column is malformed; the message names file, row and column."""


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a UTF-8 file, line endings kept; a leading byte-order mark is dropped.

    Raises
    ------
    TableError
        At the first line that is not UTF-8 (binary data, another encoding), naming the line and the byte.
    """
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                yield line_no, raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise TableError(f"{path}, row {line_no}: not UTF-8 text (byte 0x{raw[e.start]:02x}, byte {e.start + 1} "
                                 "of the line); tables and data files are UTF-8 .jsonl or .csv text") from None


def json_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a JSONL file; each line must be a JSON object."""
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TableError(f"{path}, row {line_no}: not valid JSON ({e.msg} at character {e.colno})") from None
        if not isinstance(row, dict):
            raise TableError(f"{path}, row {line_no}: expected a JSON object, got {type(row).__name__}")
        yield line_no, row


def csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank record of a CSV file, the header included."""
    reader = csv.reader(text for _, text in text_lines(path))
    start = 1
    try:
        for fields in reader:
            if fields:
                yield start, fields
            start = reader.line_num + 1
    except csv.Error as e:
        hint = ("; a CSV field holds at most 131,072 characters: keep long prompt texts in a .jsonl table"
                if "field limit" in str(e) else "")
        raise TableError(f"{path}, row {start}: not valid CSV ({e}){hint}") from None


def read_json(path: Path):
    """The JSON value in ``path`` (a whole-file JSON document)."""
    text = "".join(line for _, line in text_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TableError(f"{path}, row {e.lineno}: not valid JSON ({e.msg} at character {e.colno})") from None
