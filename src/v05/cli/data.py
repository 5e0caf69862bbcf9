"""``v05 data``: turn the shared data sets into pass-rate tables."""

from pathlib import Path

import typer

from v05._validation import check_choice
from v05.cli.errors import fail, handles_user_errors, user_errors
from v05.data import load_any, save_table

app = typer.Typer(no_args_is_help=True, help="Pass-rate tables.")

TABLE_SUFFIXES = (".jsonl", ".json", ".csv")


@app.command("export")
@handles_user_errors
def export(
    source: Path = typer.Argument(..., help="A table file or a shared data folder (v0_demo, mmlupro_29models)."),
    out: Path = typer.Option(..., "--out", help="Output table, .jsonl or .csv."),
    mmlupro_view: str = typer.Option("halves", help="For mmlupro_29models: 'models' or 'halves'."),
) -> None:
    """Validate SOURCE and write it as a pass-rate table."""
    check_choice(mmlupro_view, "--mmlupro-view", ("halves", "models"))
    if out.suffix.lower() not in TABLE_SUFFIXES:
        fail(f"--out {out}: unknown table format {out.suffix!r}; expected one of {TABLE_SUFFIXES}")
    if out.is_dir():
        fail(f"--out {out}: is a folder; expected a table file name ending in .jsonl or .csv")
    try:  # before reading: a folder that cannot be made fails now
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"--out {out}: cannot create its folder ({e.strerror})")
    with user_errors("SOURCE"):  # a TableError names the file, row and column
        table = load_any(source, mmlupro_view=mmlupro_view)
    try:
        save_table(table, out)
    except OSError as e:
        fail(f"--out {out}: cannot write the table ({e.strerror})")
    typer.echo(f"wrote {len(table)} rows, {len(table.policies)} policies, columns {list(table.columns())} to {out}")
