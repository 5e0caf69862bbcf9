"""verl tests skip (with the reason) where the ``v05[verl]`` extra is not installed; CI installs it. The folder's
helper (``fake_tq``) is imported by its own name: verl's wheel installs a top-level ``tests`` package that can
shadow this repository's ``tests`` in a full run."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
