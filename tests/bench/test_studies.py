"""The measurement studies reached through ``v05 bench``: speed end to end on a small batch, the oracle-bins
sweep's text, and every command's bad input as one red line before anything is measured."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
import v05.bench.rl_profile
import v05.bench.speed
import v05.bench.value_protocol
from v05.bench.oracle_bins import sweeps
from v05.cli import app
from v05.data import PassRateTable


def test_speed_writes_json_markdown_and_plot(tmp_path):
    res = CliRunner().invoke(app, ["bench", "speed", "--rollouts", "3000", "--repeats", "1", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "speed.json").read_text())
    assert [r["estimator"] for r in result["rows"]] == list(v05.bench.speed.ESTIMATORS)
    assert result["rollouts"] == 3000 and next(r for r in result["rows"] if r["estimator"] == "mean")["x_mean"] == 1
    text = (tmp_path / "speed.md").read_text()
    assert text.startswith(f"3,000 rollouts in {result['groups']:,} ragged groups (1-16), best of 1;")
    assert text in res.output and (tmp_path / "speed.png").stat().st_size > 0


def test_oracle_bins_sweep_has_one_table_per_prior():
    rng = np.random.default_rng(0)
    truth = rng.random(60)
    table = PassRateTable(prompt_id=np.arange(60).astype(str), policy=np.full(60, "p"), pass_rate=truth)
    text = sweeps(table, {"value": truth, "table": np.clip(truth + 0.1, 0, 1)}, "t.csv")
    assert "\nt.csv, prior value: oracle MSE x 1e3; rule = " in text and "\nt.csv, prior table:" in text
    assert text.count("\n| 2 | ") == 2 and text.endswith("|\n")


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if a command starts measuring before its input is checked."""
    def boom(*a, **k):
        raise AssertionError("reached the long computation before checking the input")

    for module, name in ((v05.bench.rl_profile, "run"), (v05.bench.value_protocol, "run"), (v05.bench.speed, "run")):
        monkeypatch.setattr(module, name, boom)


@pytest.mark.parametrize("args, fragment", [
    (["rl-profile", "--methods", "grpo_k4,nope"], "--methods: unknown method(s) ['nope']; known: v05_osla"),
    (["rl-profile", "--seeds", "0,a"], "--seeds: 'a' is not an integer"),
    (["value", "--data", ".", "--settings", "v0_half,v0_ful"], "--settings: unknown cells ['v0_ful']; known: v0_column"),
    (["value", "--data", ".", "--seeds", "-1"], "--seeds: '-1' is out of range"),
    (["value", "--data", "no_such_folder"], "--data no_such_folder: not a folder"),
    (["value-speed", "--out", "figures.txt"], "--out figures.txt: expected a .json file"),
    (["value-speed", "--data", "."], "--data .: no v0_demo folder in it"),
    (["value-ablation", "--data", "."], "--data .: no v0_demo folder in it"),
    (["oracle-bins", "--table", "no_such_table.csv"], "--table: no_such_table.csv"),
    (["speed", "--repeats", "0"], "Invalid value for '--repeats'"),
])
def test_bad_input_is_one_red_line_before_anything_runs(nothing_runs, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    one_red_line(CliRunner().invoke(app, ["bench", *args]), fragment)
    assert not any(tmp_path.iterdir())  # no output folder made either
