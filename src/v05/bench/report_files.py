"""The one way a benchmark report writes its text files.

Every report module exposes ``write_report(result, out, ...) -> {kind: path}`` (kinds ``"json"``,
``"markdown"``, then its plots), and writes its JSON and Markdown through :func:`write_documents`.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_documents(out, documents: dict[str, object], *, indent: int = 1, end: str = "") -> dict[str, Path]:
    """Write each ``{file name: content}`` of ``documents`` into ``out`` (made if missing), in UTF-8: a ``.json``
    name gets ``json.dumps(content, indent=indent) + end``, any other name its text as given.

    Returns ``{file name: path}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, content in documents.items():
        text = json.dumps(content, indent=indent) + end if name.endswith(".json") else content
        paths[name] = out / name
        paths[name].write_text(text, encoding="utf-8")
    return paths
