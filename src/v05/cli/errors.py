"""One way for a command to fail on a user error: one red line on stderr naming the problem, exit code 2,
no traceback. Every ``v05`` command wraps its body in :func:`user_errors` (or calls :func:`fail`); the root
command's class :class:`OneLineUsageErrors` does the same for click's own parsing errors."""

from __future__ import annotations

import contextlib
import functools
from typing import NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
"""What a user's input can raise in our code (``TableError``, ``UndefinedError``... are ``ValueError``s)."""

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` in red on stderr and exit with code 2."""
    _stderr.print(f"[bold red]error:[/bold red] {_one_line(message)}", markup=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def user_errors(context: str = ""):
    """Turn a user error raised inside the block into :func:`fail` (prefixed with ``context``)."""
    try:
        yield
    except USER_ERRORS as e:
        fail(f"{context}: {e}" if context else str(e))


def handles_user_errors(command):
    """Decorator form of :func:`user_errors` for a whole typer command."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with user_errors():
            return command(*args, **kwargs)

    return wrapper


def _one_line(message: str) -> str:
    from rich.markup import escape

    return escape(" ".join(str(message).split()))


@contextlib.contextmanager
def _usage_errors():
    try:
        yield
    except typer.TyperException as e:  # typer's click exceptions; usage errors exit with 2
        if e.exit_code != 2 or type(e).__name__ == "NoArgsIsHelpError":  # `v05 bench` alone prints its help
            raise
        ctx = getattr(e, "ctx", None)
        fail(e.format_message() + (f" (see '{ctx.command_path} --help')" if ctx is not None else ""))


class OneLineUsageErrors(TyperGroup):
    """The root command's class: click's own usage errors (an unknown option, ``--seeds abc``, a missing
    ``--out``, a ``typer.BadParameter``) fail like every other user error, in one red line with exit code 2,
    not in a framed usage panel."""

    def make_context(self, *args, **kwargs):
        with _usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _usage_errors():
            return super().invoke(ctx)
