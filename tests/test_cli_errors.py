"""The shared CLI failure path: one red line on stderr, exit code 2, no traceback."""

import os
import subprocess
import sys

import typer
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.cli.errors import fail, handles_user_errors, user_errors

app = typer.Typer()


@app.command()
@handles_user_errors
def boom(kind: str):
    if kind == "value":
        raise ValueError("k_max == 3, must be >= 4\n(see --help)")
    if kind == "ctx":
        with user_errors("--table x.csv"):
            raise FileNotFoundError("x.csv: no such file")
    if kind == "fail":
        fail("estimator 'v5' is unknown; known: mean, v05")
    raise RuntimeError("a bug, not a user error")


def test_user_errors_are_one_line_exit_2_no_traceback():
    runner = CliRunner()
    for kind, text in [("value", "error: k_max == 3, must be >= 4 (see --help)"),
                       ("ctx", "error: --table x.csv: x.csv: no such file"),
                       ("fail", "error: estimator 'v5' is unknown; known: mean, v05")]:
        assert one_red_line(runner.invoke(app, [kind])) == text


def test_the_error_line_is_red_on_a_terminal():
    code = "from v05.cli import app; app(prog_name='v05')"
    env = {**os.environ, "FORCE_COLOR": "1"}
    env.pop("NO_COLOR", None)
    proc = subprocess.run([sys.executable, "-c", code, "bench", "baseline", "--table", "t.csv", "--out", "o",
                           "--seeds", "abc"], capture_output=True, text=True, env=env, timeout=120)
    one_red_line(proc, "'--seeds'", "see 'v05 bench baseline --help'", red=True)


def test_bugs_are_not_swallowed():
    res = CliRunner().invoke(app, ["bug"])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)
