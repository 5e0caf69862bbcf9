import json

import numpy as np
from typer.testing import CliRunner

from v05.cli.value import app
from v05.data import save_table

runner = CliRunner()


def test_fit_predict_eval_round_trip(table, tmp_path):
    path = save_table(table, tmp_path / "t.jsonl")
    r = runner.invoke(app, ["fit", "--table", str(path), "--out", str(tmp_path / "m"), "--encoder", "hashing-64"])
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "--encoder hashing-64" in config["training_command"]

    save_table(table.select(table.policy == "pol1"), tmp_path / "ctx.jsonl")
    (tmp_path / "targets.txt").write_text("algebra problem 1: hard hard solve it\ngeometry problem 2: solve it\n")
    r = runner.invoke(app, ["predict", "--model", str(tmp_path / "m"), "--context", str(tmp_path / "ctx.jsonl"),
                            "--targets", str(tmp_path / "targets.txt"), "--out", str(tmp_path / "pred.jsonl")])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(0 < row["mean"] < 1 and row["var"] > 0 for row in rows)

    r = runner.invoke(app, ["eval", "--table", str(path), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "ev" / "value.json").read_text())
    assert doc["default"] == "value" and doc["default"] in doc["methods"]
    assert all(np.isfinite([m["auc"], m["brier"], m["mse"], m["ece"]]).all() for m in doc["methods"].values())
    assert (tmp_path / "ev" / "calibration.png").stat().st_size > 10_000
    assert "| value |" in (tmp_path / "ev" / "value.md").read_text()


def test_clear_errors(table, tmp_path):
    no_text = table.select(np.arange(4))
    no_text = type(table)(prompt_id=no_text.prompt_id, policy=no_text.policy, pass_rate=no_text.pass_rate)
    path = save_table(no_text, tmp_path / "t.csv")
    r = runner.invoke(app, ["eval", "--table", str(path), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 2 and "no 'prompt' column" in r.output
    r = runner.invoke(app, ["eval", "--table", str(tmp_path / "t.csv"), "--model", "nope", "--out", str(tmp_path / "ev")])
    assert r.exit_code == 2
    (tmp_path / "bad.jsonl").write_text('{"prompt_id": "a", "policy": "p", "pass_rate": 1.5}\n')
    r = runner.invoke(app, ["eval", "--table", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 2 and "row 1" in r.output and "pass_rate" in r.output
