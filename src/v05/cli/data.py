"""``v05 data``: turn the shared data sets into pass-rate tables."""

from pathlib import Path

import typer

from v05.data import load_any, save_table

app = typer.Typer(no_args_is_help=True, help="Pass-rate tables.")


@app.command("export")
def export(
    source: Path = typer.Argument(..., help="A table file or a shared data folder (v0_demo, mmlupro_29models)."),
    out: Path = typer.Option(..., "--out", help="Output table, .jsonl or .csv."),
    mmlupro_view: str = typer.Option("halves", help="For mmlupro_29models: 'models' or 'halves'."),
) -> None:
    """Validate SOURCE and write it as a pass-rate table."""
    table = load_any(source, mmlupro_view=mmlupro_view)
    save_table(table, out)
    typer.echo(f"wrote {len(table)} rows, {len(table.policies)} policies, columns {list(table.columns())} to {out}")
