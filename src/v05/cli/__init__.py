"""The ``v05`` command: one typer app; each sub-command lives in its own module.

Commands import their heavy dependencies (the benchmarks, matplotlib, torch) when they run, so that
``import v05.cli`` and ``v05 --help`` stay fast. Every user error, click's own included, ends in one red line
and exit code 2 (:mod:`v05.cli.errors`).
"""

import typer

from v05.cli.bench import app as bench_app
from v05.cli.bench_studies import COMMANDS as BENCH_STUDIES
from v05.cli.data import app as data_app
from v05.cli.errors import OneLineUsageErrors
from v05.cli.eval import evaluate
from v05.cli.rl import demo, train
from v05.cli.rlv import rlv
from v05.cli.value import app as value_app

app = typer.Typer(cls=OneLineUsageErrors, no_args_is_help=True, add_completion=False,
                  help="V0.5 baselines, value model and RL engine.")
bench_app.command()(rlv)
for name, study in BENCH_STUDIES.items():
    bench_app.command(name)(study)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(value_app, name="value")
app.command()(demo)
app.command()(train)
app.command("eval")(evaluate)
