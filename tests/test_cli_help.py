"""Help pages: every paragraph is wrapped to the terminal's width, never at the line breaks of the source."""

import inspect
from itertools import pairwise

import pytest
from typer.main import get_command

from v05.cli import HELP_WIDTH, app


def _commands(cmd, path=()):
    """(path, click command) of the root and every sub-command."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ROOT = get_command(app)
COMMANDS = list(_commands(ROOT))


@pytest.fixture
def render(monkeypatch, capsys):
    """``v05 <path> --help`` as printed in a terminal ``columns`` wide (typer's CliRunner would force 80)."""

    def _render(path, columns):
        monkeypatch.setenv("COLUMNS", str(columns))
        ROOT.main([*path, "--help"], prog_name="v05", standalone_mode=False)
        return capsys.readouterr().out

    return _render


def _blocks(text):
    """The output's blocks of consecutive non-empty lines."""
    block = []
    for line in text.splitlines() + [""]:
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []


def _join(lines):
    """The text of wrapped lines (a line broken after a hyphen joins without a space)."""
    out = ""
    for line in (x.strip() for x in lines):
        out += line if not out or out.endswith("-") else " " + line
    return out


def _paragraphs(help_text):
    return [" ".join(p.split()) for p in inspect.cleandoc(help_text or "").split("\n\n") if p.strip()]


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "v05" for p, _ in COMMANDS])
def test_description_paragraphs_fill_the_width(render, path, cmd, columns):
    text = render(path, columns)
    width = min(columns, HELP_WIDTH) - 2
    assert max(len(line) for line in text.splitlines()) <= width
    blocks = {_join(b): b for b in _blocks(text)}
    for paragraph in _paragraphs(cmd.help):
        assert paragraph in blocks, f"{paragraph!r} not rendered as one block:\n{text}"
        lines = blocks[paragraph]
        for line, following in pairwise(lines):  # greedy wrap: the next word did not fit
            assert len(line) + 1 + len(following.split()[0]) > width, f"{line!r} broken early:\n{text}"


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "v05" for p, _ in COMMANDS])
def test_option_help_gets_most_of_an_80_column_line(render, path, cmd):
    text = render(path, 80)
    for param in cmd.params:
        words = " ".join((param.help or "").split())
        if 0 < len(words) <= 40:  # short help fits beside the option column on one line
            assert any(line.rstrip().endswith(words) or words + "  [" in line for line in text.splitlines()), \
                f"{words!r} wrapped:\n{text}"


def test_the_reported_breaks_are_gone(render):
    assert "Top-level settings (seed, total_rollouts" in render(["train"], 200)
    assert "Best-of-N and weighted vote by the" in render(["eval"], 200)
