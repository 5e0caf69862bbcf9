"""Field documentation of settings dataclasses, read once from the docstring written under each field.

The layers declare their settings as dataclasses (``v05.baselines.EstimatorSettings``,
``v05.budget.TopUpSettings``, ``v05.value.ValuePriorSettings``...) with a docstring under every field; a
trainer's config composes them, and :func:`field_docs` gives their documentation to ``v05 train
--show-config`` and :func:`hf_field` to TRL's flat ``V05Config`` (its ``help``), so each default and each
help text is written once.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap


def field_docs(cls) -> dict[str, str]:
    """The docstring written under each field of a dataclass, inherited fields included.

    Read from the source, as ``tyro`` does for CleanRL's ``Args``; a field without a docstring (or a class
    whose source is unavailable) is absent.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def hf_field(cls, name: str, *, default=dataclasses.MISSING, prefix: str = ""):
    """A ``dataclasses.field`` for a flat (``HfArgumentParser``) config that mirrors ``cls.name``: the same
    default (unless ``default`` is given) and the field's docstring as ``help`` (``prefix`` before it)."""
    declared = {f.name: f for f in dataclasses.fields(cls)}[name]
    if default is dataclasses.MISSING:
        default = declared.default
    doc = " ".join(field_docs(cls).get(name, "").split())
    return dataclasses.field(default=default, metadata={"help": f"{prefix}{doc}"})
