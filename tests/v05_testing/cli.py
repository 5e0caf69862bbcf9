"""The project's promise for a user error on the command line, checked in one place: exit code 2, no
traceback, and one line on stderr, ``error: ...``, naming what is wrong (red on a terminal)."""

import re

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RED_ERROR = re.compile(r"\x1b\[(?:[0-9;]*;)?31m(?:\x1b\[[0-9;]*m)*error:")


def one_red_line(result, *fragments: str, red: bool = False) -> str:
    """Assert that ``result`` (a ``CliRunner`` result, or a ``subprocess.CompletedProcess`` run with
    ``text=True``) is a user error as the CLI promises, and that its line holds every fragment; return the
    line. ``red=True`` also asks for the red colour, which rich prints only to a terminal (or with
    ``FORCE_COLOR`` set when the CLI starts)."""
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    raw = result.stderr
    everything = raw + (result.stdout or "")
    err = ANSI.sub("", raw).strip()
    assert code == 2, f"exit code {code}, expected 2:\n{everything}"
    assert "Traceback" not in everything, everything
    assert err.startswith("error: ") and "\n" not in err, f"expected one 'error: ' line on stderr, got:\n{raw}"
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    if red:
        assert RED_ERROR.match(raw.lstrip()), f"'error:' is not red: {raw!r}"
    return err
