"""Settings as plain data: dotted keys (``osla.k_max=16``), JSON/TOML files, and the documented TOML that
``v05 train --show-config`` prints. Nothing here knows the config's fields; :mod:`v05.rl.config` does.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from v05._fields import field_docs

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["osla.k_max=16", "method.estimator=grpo"]`` -> ``{"osla.k_max": 16, "method.estimator": "grpo"}``.

    A value is read as JSON when it parses (numbers, true/false, null, lists, objects) and kept as text
    otherwise, so ``method.estimator=grpo`` needs no quotes.

    Examples
    --------
    >>> parse_assignments(["osla.k_max=16", "osla.max_rounds=null", "method.estimator=grpo"])
    {'osla.k_max': 16, 'osla.max_rounds': None, 'method.estimator': 'grpo'}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected section.key=value (e.g. osla.k_max=16)")
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out


def nest(settings: Mapping[str, Any]) -> dict:
    """Dotted keys to nested dicts: ``{"osla.k_max": 16}`` -> ``{"osla": {"k_max": 16}}``."""
    out: dict = {}
    for key, value in settings.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"setting {key!r}: {part!r} is set to a value and used as a section")
        node[last] = value
    return out


def merge(base: Mapping, changes: Mapping) -> dict:
    """``base`` with ``changes`` applied; nested dicts merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_settings_file(path) -> dict:
    """The settings of a ``.json`` or ``.toml`` file as a dict (errors name the file)."""
    path = Path(path)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"config file {path}: expected a .json or .toml file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"config file {path}: not valid {path.suffix[1:].upper()} ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a table of settings, got {type(data).__name__}")
    return data


def render_toml(config, header: str) -> str:
    """A dataclass of scalars and dataclass sections as TOML, each key under its field's docstring.

    Unset (None) values are written as comments, since TOML has no null; where None is not the field's
    default (``osla.max_rounds``: uncapped, against the default 2) it is written as the string "none",
    which such a field reads as None.
    """
    lines = [*_comment(header), ""]
    sections = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            sections.append((f.name, value))
        else:
            lines += _key(f.name, value, field_docs(type(config)).get(f.name, ""), f.default)
    for name, section in sections:
        lines += [f"[{name}]", *_comment(field_docs(type(config)).get(name, "")), ""]
        docs = field_docs(type(section))
        for f in dataclasses.fields(section):
            lines += _key(f.name, getattr(section, f.name), docs.get(f.name, ""), f.default)
    return "\n".join(lines).rstrip() + "\n"


def _key(name: str, value, doc: str, default=None) -> list[str]:
    if value is None:
        line = f"# {name} = (unset)" if default is None or default is dataclasses.MISSING else f'{name} = "none"'
    else:
        line = f"{name} = {_toml_value(value)}"
    return [*_comment(doc), line, ""]


def _comment(text: str) -> list[str]:
    lines = textwrap.fill(" ".join(text.split()), 100, break_on_hyphens=False).splitlines() if text else []
    return [f"# {line}".rstrip() for line in lines]


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{k if _BARE_KEY.match(str(k)) else json.dumps(str(k))} = {_toml_value(v)}"
                          for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")
