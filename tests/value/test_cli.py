import json

import numpy as np
import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.cli.value import app
from v05.data import save_table

runner = CliRunner()


def test_fit_predict_eval_round_trip(table, tmp_path):
    path = save_table(table, tmp_path / "t.jsonl")
    r = runner.invoke(app, ["fit", "--table", str(path), "--out", str(tmp_path / "m"), "--encoder", "hashing-64",
                            "--correction", "surface"])
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "--encoder hashing-64" in config["training_command"] and config["params"]["correction"] == "surface"

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
    one_red_line(runner.invoke(app, ["eval", "--table", str(path), "--out", str(tmp_path / "ev")]), "no 'prompt' column")
    r = runner.invoke(app, ["eval", "--table", str(tmp_path / "t.csv"), "--model", "nope", "--out", str(tmp_path / "ev")])
    one_red_line(r, "--model", "nope")
    (tmp_path / "bad.jsonl").write_text('{"prompt_id": "a", "policy": "p", "pass_rate": 1.5}\n')
    r = runner.invoke(app, ["eval", "--table", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "ev")])
    one_red_line(r, "row 1", "pass_rate")


def test_user_errors_are_one_red_line_before_any_work(table, tmp_path, monkeypatch):
    from v05.value import ValueModel

    path = save_table(table, tmp_path / "t.jsonl")
    monkeypatch.setattr(ValueModel, "fit", lambda *a, **k: pytest.fail("fit ran before the options were checked"))
    (tmp_path / "file").write_text("x")
    cases = [
        (["fit", "--table", str(path), "--out", str(tmp_path / "m"), "--encoder", "bert"], ["unknown encoder 'bert'"]),
        (["fit", "--table", str(path), "--out", str(tmp_path / "m"), "--ridge", "0"],
         ["ridge == 0.0, must be a finite number > 0"]),
        (["fit", "--table", str(path), "--out", str(tmp_path / "file")], ["--out", "exists and is not a folder"]),
        (["fit", "--table", str(path), "--out", str(tmp_path / "m"), "--mmlupro-view", "all"],
         ["--mmlupro-view 'all'", "models, halves"]),
        (["fit", "--table", str(path), "--out", str(tmp_path / "m"), "--correction", "loo"],
         ["--correction 'loo'", "embedding, surface"]),
        (["eval", "--table", str(path), "--out", str(tmp_path / "e"), "--split", "thirds"], ["--split 'thirds'", "half, column"]),
        (["eval", "--table", str(path), "--out", str(tmp_path / "e"), "--refit-folds", "1"], ["--refit-folds 1"]),
        (["eval", "--table", str(path), "--out", str(tmp_path / "e"), "--category", "law"],
         ["only to the mmlupro_29models folder"]),
        (["eval", "--table", str(path), "--out", str(tmp_path / "e"), "--refit-folds", "2", "--encoder", "nope"],
         ["--encoder", "unknown encoder 'nope'"]),
        (["eval", "--table", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "e")], ["missing.jsonl"]),
        (["predict", "--context", str(path), "--targets", str(path), "--out", str(tmp_path)], ["is a folder"]),
        (["predict", "--context", str(path), "--targets", str(path), "--out", str(tmp_path / "p.jsonl")], ["exactly one policy"]),
    ]
    for args, fragments in cases:
        one_red_line(runner.invoke(app, args), *fragments)


def test_corrupt_weights_are_one_red_line(fitted, table, tmp_path):
    folder = fitted.save(tmp_path / "m")
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-2] ^= 0x10
    (folder / "weights.safetensors").write_bytes(bytes(data))
    path = save_table(table, tmp_path / "t.jsonl")
    r = runner.invoke(app, ["eval", "--table", str(path), "--model", str(folder), "--out", str(tmp_path / "e")])
    one_red_line(r, "--model", "does not match field 'weights_sha256'")


def test_eval_warns_in_sample_and_records_it(fitted, table, tmp_path):
    folder = fitted.save(tmp_path / "m")
    path = save_table(table, tmp_path / "t.jsonl")
    r = runner.invoke(app, ["eval", "--table", str(path), "--model", str(folder), "--out", str(tmp_path / "e"), "--n-boot", "0"])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("warning: the model was trained on 4 of the 4 evaluated")
    doc = json.loads((tmp_path / "e" / "value.json").read_text())
    assert doc["in_sample"]["policies_in_training"] == sorted(table.policies)
    assert doc["in_sample"]["warning"].startswith("the model was trained on 4")
    assert "**Warning:**" in (tmp_path / "e" / "value.md").read_text()


def test_eval_out_of_domain_with_a_train_table(fitted, table, tmp_path):
    from v05_testing.tables import topic_table as synthetic_table

    other = synthetic_table(n_policies=3, seed=7)
    other = type(other)(**{**other.columns(), "prompt": np.char.add(other.prompt.astype(str), " elsewhere"),
                           "policy": np.char.add(other.policy.astype(str), "-b")})
    folder = fitted.save(tmp_path / "m")
    args = ["eval", "--table", str(save_table(table, tmp_path / "t.jsonl")), "--model", str(folder),
            "--train-table", str(save_table(other, tmp_path / "o.jsonl")), "--out", str(tmp_path / "e"), "--n-boot", "20"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr
    doc = json.loads((tmp_path / "e" / "value.json").read_text())
    assert doc["in_sample"] == {"recorded": True, "n_policies": 4, "policies_in_training": [], "query_prompt_share": 0.0,
                                "warning": None}
    assert "o.jsonl minus the evaluated prompts" in doc["model"]
    assert len(doc["methods"]["value_cold"]["auc_ci"]) == 2
