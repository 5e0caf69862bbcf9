"""``v05 bench``: benchmarks that write JSON, Markdown and PNG reports."""

import typer

app = typer.Typer(no_args_is_help=True, help="Benchmarks.")
