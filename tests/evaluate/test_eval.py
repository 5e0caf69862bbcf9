"""``v05 eval``'s parts: grading and answer clusters, problems files, quality figures, value-model cross-fitting,
and the command end to end on a tiny engine run trained with the verifier."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05_testing.engine import tiny
from v05.evaluate.grading import grade
from v05.evaluate.problems import builtin_problems, load_problems_file
from v05.evaluate.quality import quality, value_predictions
from v05.evaluate.report import quality_table, reliability_title
from v05.evaluate.run import EvalSettings, prepare, run_eval
from v05.stats import ece, reliability
from v05.evaluate.voting import NO_ANSWER
from v05.cli import app
from v05.rl.config import TaskConfig
from v05.rl.loop import train


def test_exact_grading_clusters_equal_responses_and_drops_unfinished_ones():
    g = grade([["2", "3", "2", "", "2?"]], ["2"], "exact")
    assert g.correct.tolist() == [[True, False, True, False, False]]
    assert g.answer[0, 0] == g.answer[0, 2] != g.answer[0, 1]
    assert g.answer[0, 3] == g.answer[0, 4] == NO_ANSWER


def test_math_grading_votes_equal_values_together_and_checks_with_math_verify():
    responses = [["so \\boxed{\\frac{1}{2}}", "it is 0.5", "\\boxed{3}", "\\boxed{3.0}", "no idea", "\\boxed{4}"]]
    g = grade(responses, ["1/2"], "math")
    assert g.correct.tolist() == [[True, True, False, False, False, False]]
    a = g.answer[0]
    assert a[0] == a[1] and a[2] == a[3] and len({a[0], a[2], a[5]}) == 3 and a[4] == NO_ANSWER


def test_grading_rejects_mismatched_lengths_and_unknown_graders():
    with pytest.raises(ValueError, match="2 problems of responses but 1 reference answers"):
        grade([["1"], ["2"]], ["1"], "exact")
    with pytest.raises(ValueError, match="grader == 'fuzzy'"):
        grade([["1"]], ["1"], "fuzzy")


def test_builtin_problems_are_the_task_held_out_set():
    problems = builtin_problems(TaskConfig(), limit=5)
    assert len(problems) == 5 and problems[0].prompt_id == "builtin/0" and problems[0].prompt.endswith("=")
    assert all(str(eval(p.prompt.rstrip("="))) == p.answer for p in problems)  # noqa: S307 (digits, + and -)


def test_problems_file_reads_known_benchmarks_and_plain_answer_files(tmp_path):
    gsm = tmp_path / "gsm8k_test.jsonl"
    gsm.write_text(json.dumps({"question": "1+1?", "answer": "so #### 1,000"}) + "\n\n")
    assert [(p.prompt, p.answer) for p in load_problems_file(gsm)] == [("1+1?", "1000")]
    plain = tmp_path / "mine.jsonl"
    plain.write_text("".join(json.dumps({"problem": f"p{i}", "answer": i}) + "\n" for i in range(4)))
    problems = load_problems_file(plain, limit=2)
    assert [p.answer for p in problems] == ["0", "1"] and problems[1].prompt_id == "mine/1"


@pytest.mark.parametrize(("text", "message"), [
    ("{bad\n", "line 1: not valid JSON"),
    ("[1, 2]\n", "line 1: expected a JSON object, got list"),
    ('{"problem": "x", "answer": 1}\n{"answer": 2}\n', "line 2: no problem text"),
    ('{"problem": "x"}\n', "line 1: no reference answer (an 'answer' field"),
    ('{"problem": "x", "answer": " "}\n', "line 1: empty reference answer"),
    ("\n", "holds no problems"),
])
def test_bad_problems_files_are_named_by_line_and_field(tmp_path, text, message):
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match="problems file .*p.jsonl") as e:
        load_problems_file(path)
    assert message in str(e.value)


def test_a_known_benchmark_row_without_its_field_is_named(tmp_path):
    path = tmp_path / "olympiadbench_test.jsonl"
    path.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(ValueError, match="line 1: no reference answer"):
        load_problems_file(path)


def reliability_reference(pred, outcome, n_bins):
    bins = {}
    for p, o in zip(pred, outcome):
        b = min(int(p * n_bins), n_bins - 1)
        bins.setdefault(b, []).append((p, o))
    keys = sorted(bins)
    return [np.mean([p for p, _ in bins[k]]) for k in keys], [np.mean([o for _, o in bins[k]]) for k in keys], \
        [len(bins[k]) for k in keys]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40), st.integers(1, 12))
def test_reliability_bins_match_a_plain_loop_and_give_the_ece(rows, n_bins):
    pred, outcome = np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=float)
    r = reliability(pred, outcome, n_bins)
    mean_pred, mean_outcome, count = reliability_reference(pred, outcome, n_bins)
    assert np.allclose(r["pred"], mean_pred) and np.allclose(r["outcome"], mean_outcome) and r["count"] == count
    gap = sum(c * abs(p - o) for p, o, c in zip(r["pred"], r["outcome"], r["count"])) / len(rows)
    assert ece(pred, outcome, n_bins) == pytest.approx(gap)


def test_quality_ranks_solutions_within_problems_and_a_prompt_level_score_cannot():
    correct = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    perfect = np.where(correct, 0.9, 0.1)
    q = quality(perfect, correct)
    assert q["solutions"]["auc"] == 1.0 and q["solutions"]["auc_within"] == 1.0
    assert q["solutions"]["n_mixed_problems"] == 2
    assert q["solutions"]["brier"] == pytest.approx(0.01)
    prompt_level = np.repeat(correct.mean(1, keepdims=True), 4, axis=1)
    q = quality(prompt_level, correct)
    assert q["solutions"]["auc_within"] == 0.5 and q["problems"]["mse"] == 0.0 and q["problems"]["ece"] == 0.0


def test_quality_table_names_what_was_not_scored_and_shows_no_within_auc_for_the_value_model():
    correct = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    verifier = quality(np.where(correct, 0.9, 0.1), correct)
    value = quality(np.repeat(correct.mean(1, keepdims=True), 4, axis=1), correct)
    both = quality_table({"verifier": verifier, "value_model": value})
    assert both[0] == "## Quality of the predictors"
    assert "| verifier P(Yes) | 1.000 | 1.000 (2 problems) |" in both[4]
    assert "| value model | " in both[5] and "0.500" not in both[5] and "n/a: one score per problem" in both[5]
    no_verifier = quality_table({"verifier": None, "value_model": value})
    assert no_verifier[0] == "## Quality of the predictors (no verifier: the policy was not trained with one)"
    assert len(no_verifier) == 5 and "not scored" not in "\n".join(no_verifier[1:])
    skipped = quality_table({"verifier": verifier, "value_model": {"skipped": "fewer than two problems"}})
    assert skipped[0].endswith("(value model skipped: fewer than two problems)") and len(skipped) == 5
    nothing = quality_table({"verifier": None, "value_model": None})
    assert nothing == ["## Quality of the predictors: nothing scored (no verifier: the policy was not trained with "
                       "one; value model not scored: --value-model none)"]
    assert reliability_title({"verifier": verifier, "value_model": value}) == "Reliability: verifier P(Yes) and value model"
    assert reliability_title({"verifier": None, "value_model": value}) == "Reliability: value model\n(no verifier)"
    assert reliability_title({"verifier": None, "value_model": None}) == \
        "Reliability: nothing scored\n(no verifier; value model not scored)"


def test_value_predictions_are_cross_fitted_from_the_other_problems(fitted, table):
    fitted = copy.deepcopy(fitted)  # predicting fills the encoder's cache; the session's model stays untouched
    prompts = list(dict.fromkeys(table.prompt))[:10]
    rates = np.linspace(0.0, 1.0, 10)
    out = value_predictions(fitted, prompts, rates, 8, seed=0)
    assert out.shape == (10,) and np.all((0 <= out) & (out <= 1))
    changed = rates.copy()
    changed[0] = 1.0 - changed[0]  # problem 0's own outcome never enters its own prediction
    again = value_predictions(fitted, prompts, changed, 8, seed=0)
    assert again[0] == pytest.approx(out[0])
    with pytest.raises(ValueError, match="at least two problems"):
        value_predictions(fitted, prompts[:1], rates[:1], 8)


@pytest.fixture(scope="module")
def verifier_run(tmp_path_factory):
    """A tiny engine run trained with the verifier loss (seconds)."""
    out = tmp_path_factory.mktemp("rlv") / "run"
    train(tiny(**{"method.estimator": "grpo", "verifier.enabled": True}), out, tensorboard=False)
    return out


def test_eval_of_an_engine_run_writes_curves_quality_and_plots(verifier_run, tmp_path):
    prepared = prepare(EvalSettings(policy=str(verifier_run), n_max=4, limit=12, value_model="none", n_boot=50))
    calls = []
    report = run_eval(prepared, tmp_path, progress=lambda *a: calls.append(a))
    assert report["n"] == [1, 2, 4] and report["problems"]["n"] == 12 and report["policy"]["has_verifier"]
    s = report["strategies"]
    for name in ("majority", "best_of_n", "weighted", "pass@n"):
        assert len(s[name]["mean"]) == 3
        assert all(lo - 1e-9 <= m <= hi + 1e-9 for m, lo, hi in zip(s[name]["mean"], s[name]["lo"], s[name]["hi"]))
    assert all(p >= m - 1e-9 for p, m in zip(s["pass@n"]["mean"], s["majority"]["mean"]))
    correct = np.array(report["pool"]["correct"])
    assert s["pass@n"]["mean"][0] == pytest.approx(correct.mean()) == pytest.approx(report["pass@1"]["mean"])
    assert np.array(report["pool"]["score"]).shape == (12, 4) and report["value_model"] is None
    assert calls[-1][0] == "verify" and calls[0][0] == "sample"
    for name in ("eval.json", "eval.md", "scaling.png", "reliability.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| N |" in (tmp_path / "eval.md").read_text()


def test_eval_of_the_same_run_and_seed_is_reproducible(verifier_run, tmp_path):
    settings = EvalSettings(policy=str(verifier_run), n_max=2, limit=6, value_model="none", n_boot=20)
    a = run_eval(prepare(settings), tmp_path / "a")
    b = run_eval(prepare(settings), tmp_path / "b")
    assert a["pool"] == b["pool"] and a["strategies"] == b["strategies"]


def test_eval_command_fails_in_one_line_before_sampling(verifier_run, tmp_path):
    def run(*args):
        return CliRunner().invoke(app, ["eval", *map(str, args), "--out", str(tmp_path / "out")])

    one_red_line(run("--policy", tmp_path / "nope"), "no such file or folder")
    one_red_line(run("--policy", tmp_path), "not an engine run folder")
    one_red_line(run("--policy", verifier_run, "--n-max", "0"), "n_max == 0, must be >= 1")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x"}\n')
    one_red_line(run("--policy", verifier_run, "--problems", bad), "line 1: no reference answer")
    good = tmp_path / "good.jsonl"
    good.write_text('{"problem": "x", "answer": 1}\n')
    one_red_line(run("--policy", verifier_run, "--problems", good), "an engine checkpoint answers the built-in task only")
    one_red_line(run("--policy", verifier_run, "--value-model", "nope"), "nope")
    assert not (tmp_path / "out").exists()


def test_eval_command_end_to_end(verifier_run, tmp_path):
    result = CliRunner().invoke(app, ["eval", "--policy", str(verifier_run), "--n-max", "2", "--limit", "4",
                                      "--value-model", "none", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n"] == [1, 2] and "weighted vote (verifier)" in result.stdout


def test_eval_of_a_transformers_model_folder_on_a_problems_file(tmp_path):
    from v05_testing.chat import printable_tokenizer, qwen2

    tok = printable_tokenizer(chat=True)
    qwen2(len(tok)).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    problems = tmp_path / "mine.jsonl"
    problems.write_text("".join(json.dumps({"problem": f"{a}+{a}?", "answer": 2 * a}) + "\n" for a in range(3)))
    prepared = prepare(EvalSettings(policy=str(tmp_path / "model"), problems=str(problems), n_max=2,
                                    max_new_tokens=3, batch_size=4, value_model="none", n_boot=20))
    assert prepared.policy.kind == "transformers" and prepared.policy.grader == "math"
    report = run_eval(prepared, tmp_path / "out")
    assert report["n"] == [1, 2] and report["problems"]["n"] == 3
    score = np.array(report["pool"]["score"])
    assert score.shape == (3, 2) and np.all((0 < score) & (score < 1))  # a zero-shot judge, random weights
    assert all(len(row) == 2 for row in report["pool"]["answer"])


def test_no_headline_when_majority_voting_solves_nothing():
    from v05.evaluate.run import headline
    from v05.evaluate.voting import Pool, scaling_curves

    correct = np.zeros((3, 4), dtype=bool)
    curves = scaling_curves(Pool(np.zeros((3, 4), dtype=int), correct, np.full((3, 4), 0.5)), n_boot=10)
    h = headline(curves, 4)
    assert h["weighted"] == {"n": None, "ratio": None} and "solves no problem" in h["note"]
    correct[0] = True
    h = headline(scaling_curves(Pool(np.zeros((3, 4), dtype=int), correct, np.full((3, 4), 0.5)), n_boot=10), 4)
    assert h["weighted"]["n"] == 1 and "note" not in h
