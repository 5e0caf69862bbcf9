"""verl tests skip (with the reason) where the ``v05[verl]`` extra is not installed; CI installs it."""

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
