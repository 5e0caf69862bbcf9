"""The RL^V comparison: its conditions, and its report on runs whose evaluations are built from known pools."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.evaluate.quality import quality
from v05.evaluate.run import headline
from v05.bench.rlv import METHOD_LIST, RlvSettings, run_name
from v05.bench.rlv_report import first_n_reaching, summarise, write_report
from v05.evaluate.voting import Pool, scaling_curves
from v05.cli import app

N_MAX = 4


def _run(out, method, seed, budget, skill):
    """One run whose held-out pool (20 problems x N_MAX) is drawn with pass rate ``skill``; the verifier's score
    is informative (correct solutions score higher)."""
    rng = np.random.default_rng(seed * 10 + int(skill * 100))
    correct = rng.random((20, N_MAX)) < skill
    answer = np.where(correct, 0, rng.integers(1, 3, size=correct.shape))
    score = np.clip(np.where(correct, 0.7, 0.3) + rng.normal(0, 0.1, correct.shape), 0, 1)
    has_verifier = "verifier" in method.label
    curves = scaling_curves(Pool(answer, correct, score if has_verifier else None), n_boot=20, seed=seed)
    value = np.repeat(correct.mean(1, keepdims=True), N_MAX, axis=1)
    name = run_name(method, budget, seed)
    ev = {"n": curves["n"], "strategies": curves["strategies"], "pass@1": {"mean": float(correct.mean())},
          "headline": headline(curves, N_MAX), "verifier": quality(score, correct) if has_verifier else None,
          "value_model": quality(value, correct)}
    pool = {"correct": correct.astype(int).tolist(), "score": score.tolist() if has_verifier else None}
    folder = out / "evals" / name
    folder.mkdir(parents=True)
    (folder / "eval.json").write_text(json.dumps({"pool": pool, "per_problem": [{"value": float(v)} for v in value[:, 0]]}))
    return {"method": method.label, "budget": budget, "seed": seed, "name": name, "rollouts": budget, "train_curve": [],
            "train_final_accuracy": float(correct.mean()), "verifier_train_curve": [], "cpu_seconds": 1.0, "eval": ev}


def test_report_pairs_each_verifier_method_with_its_base_seed_by_seed(tmp_path):
    skill = {"GRPO": 0.4, "GRPO + verifier": 0.5, "V0.5": 0.45, "V0.5 + verifier": 0.45}
    runs = [_run(tmp_path, m, s, 100, skill[m.label]) for m in METHOD_LIST for s in (0, 1, 2)]
    report = {"settings": {"seeds": [0, 1, 2], "budgets": [100], "n_max": N_MAX}, "runs": runs}
    paths = write_report(report, tmp_path)
    summary = summarise(report)
    cell = summary["100"]
    for m in METHOD_LIST:
        mine = [r for r in runs if r["method"] == m.label]
        assert cell[m.label]["pass@1"]["values"] == [r["eval"]["pass@1"]["mean"] for r in mine]
        assert cell[m.label]["pass@1"]["ci"] > 0
    diff = cell["GRPO + verifier"]["vs_base"]["pass@1_diff"]
    by_seed = [a["eval"]["pass@1"]["mean"] - b["eval"]["pass@1"]["mean"]
               for a, b in zip(runs[3:6], runs[0:3])]
    assert diff["values"] == pytest.approx(by_seed)
    assert "verifier" in cell["GRPO + verifier"] and "verifier" not in cell["GRPO"]
    assert cell["GRPO + verifier"]["verifier"]["solutions"]["auc"]["mean"] > 0.9  # the score was built informative
    assert cell["GRPO"]["value_model"]["solutions"]["auc_within"]["mean"] == 0.5
    text = (tmp_path / "rlv.md").read_text()
    assert "| 100 |" in text and "Efficiency headline" in text and "reached in" in text
    assert sorted(p.name for p in paths.values()) == ["pass1.png", "reliability.png", "rlv.json", "rlv.md",
                                                      "scaling_r100.png", "summary.json"]
    for path in paths.values():
        assert path.stat().st_size > 0
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert report == json.loads((tmp_path / "rlv.json").read_text())


def test_first_n_reaching():
    assert first_n_reaching([1, 2, 4], [0.1, 0.5, 0.6], 0.5) == 2
    assert first_n_reaching([1, 2, 4], [0.1, 0.2, 0.3], 0.5) is None


def test_settings_give_every_method_every_seed_and_budget_at_equal_rollouts():
    jobs = RlvSettings(seeds=(0, 1), budgets=(1000, 2000)).jobs()
    assert len(jobs) == 2 * 2 * len(METHOD_LIST)
    for method, budget, seed, cfg in jobs:
        assert cfg.total_rollouts == budget and cfg.seed == seed and cfg.threads == 1
        assert cfg.verifier.enabled == ("verifier" in method.label)
    with pytest.raises(ValueError, match="seeds == \\(0, 0\\)"):
        RlvSettings(seeds=(0, 0))
    with pytest.raises(ValueError, match="n_max == 0"):
        RlvSettings(n_max=0)


def test_bench_rlv_rejects_bad_options_in_one_line(tmp_path):
    for args, text in ((["--seeds", "0,x"], "--seeds '0,x': expected comma-separated integers"),
                       (["--budgets", "0"], "budget == 0, must be >= 1"),
                       (["--value-model", "nope"], "nope")):
        one_red_line(CliRunner().invoke(app, ["bench", "rlv", *args, "--out", str(tmp_path / "out")]), text)
    assert not (tmp_path / "out").exists()
