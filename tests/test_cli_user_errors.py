"""Bad input to ``v05 bench baseline``, ``v05 data export`` and the command line itself, tried as a new user
would: one red line naming the option, the value and what is allowed, exit code 2, no traceback, and before
the table is read or anything is simulated."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.cli import app


def test_importing_the_cli_does_not_import_matplotlib():
    code = "import sys, v05.cli; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("args, fragments", [
    (["bench", "baseline", "--table", "t.csv", "--out", "o", "--seeds", "abc"], ["'--seeds'", "valid integer"]),
    (["bench", "baseline", "--table", "t.csv", "--out", "o", "--seeds", "0"], ["'--seeds'", "greater than or equal to 1"]),
    (["bench", "baseline", "--table", "t.csv"], ["Missing option '--out'", "bench baseline --help"]),
    (["bench", "baselin"], ["No such command 'baselin'"]),
    (["--nope"], ["No such option: --nope"]),
])
def test_click_usage_errors_are_one_red_line(args, fragments):
    one_red_line(CliRunner().invoke(app, args), *fragments)


@pytest.mark.parametrize("extra, fragments", [
    (["--k", "2.5"], ["--k: '2.5' is not an integer; expected comma-separated integers >= 1"]),
    (["--k", "0,4"], ["--k: '0' is out of range"]),
    (["--estimators", "v5"], ["--estimators: unknown estimator 'v5'; known: dapo"]),
    (["--estimators", "mean,grpo", "--osla"], ["none of ['mean', 'grpo'] does"]),
    (["--osla", "--osla-rule", "pape"], ["OSLA settings: rule='pape'; expected one of ('paper', 'eb')"]),
    (["--osla", "--k-init", "8", "--k-max", "4"], ["k_max (4) must be >= k_init (8)"]),
    (["--osla", "--cost", "-1"], ["cost == -1.0, must be a finite number >= 0"]),
    (["--osla-max-rounds", "1,2"], ["--osla-max-rounds caps the OSLA planner's rounds: add --osla"]),
    (["--osla", "--osla-max-rounds", "one"], ["--osla-max-rounds: 'one' is not an integer"]),
    (["--prior", "valu"], ["--prior='valu'; expected one of ('auto', 'value')"]),
    (["--prior-noise", "0.5,-1"], ["--prior-noise: '-1' is out of range"]),
    (["--mmlupro-view", "both"], ["--mmlupro-view='both'"]),
])
def test_bench_baseline_rejects_bad_settings_before_reading_the_table(tmp_path, nothing_runs, extra, fragments):
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", "t.csv", "--out", str(tmp_path / "o")] + extra)
    one_red_line(res, *fragments)


def test_bench_baseline_out_that_is_a_file_fails_first(tmp_path, nothing_runs):
    (tmp_path / "report.md").write_text("x")
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", "t.csv", "--out", str(tmp_path / "report.md")])
    one_red_line(res, "report.md: is a file; expected a folder")
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", "t.csv",
                                   "--out", str(tmp_path / "report.md" / "sub")])
    one_red_line(res, "cannot create the folder")


@pytest.mark.parametrize("content, fragments", [
    ('{"prompt_id": "q", "policy": "p", "pass_rate": 0.5, "priro": 0.4}\n', ["--table: ", "unknown column(s) ['priro']"]),
    ('{"prompt_id": "q", "policy": "p", "pass_rate": 0.5}\n{"prompt_id": "q", "policy": "p", "pass_rate": 0.7}\n',
     ["rows 1 and 2: prompt_id 'q' of policy 'p' appears twice (conflicting pass rates 0.5 and 0.7)"]),
])
def test_bench_baseline_names_a_bad_table(tmp_path, content, fragments):
    (tmp_path / "t.jsonl").write_text(content)
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(tmp_path / "t.jsonl"),
                                   "--out", str(tmp_path / "o")])
    one_red_line(res, str(tmp_path / "t.jsonl"), *fragments)


def test_data_export_user_errors(tmp_path):
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps({"prompt_id": "q", "policy": "p", "pass_rate": 0.5}) + "\n")
    runner = CliRunner()
    one_red_line(runner.invoke(app, ["data", "export", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x.csv")]),
                   "SOURCE: ", "nope.csv: no such file")
    one_red_line(runner.invoke(app, ["data", "export", str(table), "--out", str(tmp_path / "x.txt")]),
                   "unknown table format '.txt'; expected one of ('.jsonl', '.json', '.csv')")
    one_red_line(runner.invoke(app, ["data", "export", str(table), "--out", str(tmp_path)]), "unknown table format")
    (tmp_path / "afile").write_text("x")
    one_red_line(runner.invoke(app, ["data", "export", str(table), "--out", str(tmp_path / "afile" / "x.csv")]),
                   "cannot create its folder")
    one_red_line(runner.invoke(app, ["data", "export", str(table), "--out", str(tmp_path / "y.csv"),
                                       "--mmlupro-view", "x"]), "--mmlupro-view='x'")
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    one_red_line(runner.invoke(app, ["data", "export", str(tmp_path / "bin.csv"), "--out", str(tmp_path / "z.csv")]),
                   "bin.csv, row 1: not UTF-8 text")
    res = runner.invoke(app, ["data", "export", str(table), "--out", str(tmp_path / "ok.csv")])
    assert res.exit_code == 0 and (tmp_path / "ok.csv").is_file()
