"""With one extra installed (``pip install "v05[verl]"``), the other extra's tests skip with the reason instead
of failing at collection. Each install is simulated by :mod:`v05_testing.extras`, which hides the packages it
lacks; the two collections run at once."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = {extra: {f"tests/integrations/{p.name}" for p in (ROOT / "tests" / "integrations").glob(f"test_{extra}*.py")}
         for extra in ("trl", "verl")}

pytestmark = pytest.mark.slow


def test_each_install_collects_with_the_missing_extras_tests_skipped():
    assert all(TESTS.values())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
    runs = {install: subprocess.Popen([sys.executable, "-m", "v05_testing.extras", install, "--collect-only", "-q",
                                       "-p", "no:cacheprovider", "src", "tests"],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for install in ("v05[trl]", "v05[verl]")}
    for install, proc in runs.items():
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, f"{install}: collection failed\n{out[-4000:]}"
        skipped = dict(re.findall(r"^SKIPPED \[\d+\] (tests/integrations/test_\w+\.py):\d+: needs the v05\[(\w+)\] extra",
                                  out, re.M))
        for extra, files in TESTS.items():
            if f"[{extra}]" in install:
                assert not files & skipped.keys() and all(f"{f}::" in out for f in files), f"{install}:\n{out[-4000:]}"
            else:
                assert {f: extra for f in files}.items() <= skipped.items(), f"{install}: {skipped}\n{out[-4000:]}"
