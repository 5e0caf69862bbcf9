"""Surface features of a prompt's text: cheap counts that can say how hard it is where an embedding does not.

A sentence embedding encodes what a prompt is about; how long it is, how many numbers and formulas it holds
and how many answer options it offers are difficulty signals it may blur. :func:`surface_features` computes
them in pure Python (regular expressions) for the in-context correction of the text prior
(:mod:`v05.value.adapt_loo`) and the ``surface`` rival of the value benchmark. The list, in column order:

===================  ==========================================================================================
``log_chars``        ``log(1 + characters)``
``log_words``        ``log(1 + whitespace-separated words)``
``log_lines``        ``log(1 + non-empty lines)``
``log_numbers``      ``log(1 + numbers)``: maximal runs of digits, with one decimal point allowed (``3.14``: one)
``digit_share``      digits / characters (0 for an empty text)
``log_math``         ``log(1 + math symbols)``: each of ``+ - * / = < > ^ _ | ! % ≤ ≥ ≠ ± × ÷ √ ∑ ∫ ∞ π``
``log_latex``        ``log(1 + LaTeX commands and $ signs)``: ``\\frac``, ``\\sqrt``, ... and each ``$``
``n_options``        answer options: lines that begin with ``(A)`` ... ``(J)``, ``A)`` or ``A.`` (capital A-J)
``log_questions``    ``log(1 + question marks)``
``mean_word_len``    characters per word (0 for a text without words)
===================  ==========================================================================================
"""

from __future__ import annotations

import re

import numpy as np

SURFACE_FEATURES = ("log_chars", "log_words", "log_lines", "log_numbers", "digit_share", "log_math", "log_latex",
                    "n_options", "log_questions", "mean_word_len")
"""Column names of :func:`surface_features`, in order."""

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LATEX = re.compile(r"\\[A-Za-z]+|\$")
_OPTION = re.compile(r"^[ \t]*(?:\([A-J]\)|[A-J][).])(?:\s|$)", re.MULTILINE)
_MATH = frozenset("+-*/=<>^_|!%≤≥≠±×÷√∑∫∞π")


def surface_features(texts) -> np.ndarray:
    """Surface features of each text, shape (n_texts, len(SURFACE_FEATURES)), float64 (columns: the module's table)."""
    rows = [_one(t) for t in texts]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(SURFACE_FEATURES))


def _one(text: str) -> tuple:
    if not isinstance(text, str):
        raise TypeError(f"surface_features needs str texts; got {type(text).__name__}")
    words = text.split()
    n_chars = len(text)
    digits = sum(c.isdigit() for c in text)
    return (
        np.log1p(n_chars),
        np.log1p(len(words)),
        np.log1p(sum(1 for line in text.splitlines() if line.strip())),
        np.log1p(len(_NUMBER.findall(text))),
        digits / n_chars if n_chars else 0.0,
        np.log1p(sum(c in _MATH for c in text)),
        np.log1p(len(_LATEX.findall(text))),
        float(len(_OPTION.findall(text))),
        np.log1p(text.count("?")),
        sum(map(len, words)) / len(words) if words else 0.0,
    )
