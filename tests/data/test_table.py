"""Pass-rate tables: round trips, validation messages that name file, row and column, shared loaders."""

import json

import numpy as np
import pytest

from v05.data import PassRateTable, TableError, load_any, load_mmlupro, load_table, load_v0_demo, save_table


def small_table() -> PassRateTable:
    return PassRateTable.from_columns(
        prompt_id=["q1", "q2", "q3"], policy=["a", "a", "b"], pass_rate=[0.0, 0.5, 1.0],
        n_samples=[4, 4, 8], prompt=["1+1=?", "2*3=?", "héllo, \"quoted\"\nnewline"], prior=[0.1, 0.5, 0.9],
        split=["context", "query", "query"],
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip(tmp_path, suffix):
    table = small_table()
    back = load_table(save_table(table, tmp_path / f"t{suffix}"))
    for name, col in table.columns().items():
        assert back.columns()[name].tolist() == col.tolist(), name


def test_select_and_policies():
    t = small_table()
    assert t.policies == ["a", "b"]
    sub = t.select(t.policy == "a")
    assert len(sub) == 2 and sub.prior.tolist() == [0.1, 0.5]


def write_lines(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    "row, match",
    [
        ({"prompt_id": "q", "policy": "p", "pass_rate": 1.5},
         r"row 2, column 'pass_rate': expected a number in \[0, 1\], got 1.5"),
        ({"prompt_id": "q", "policy": "p", "pass_rate": "NaN"}, r"row 2, column 'pass_rate'"),
        ({"prompt_id": "q", "policy": "p", "pass_rate": 0.5, "prior": -0.1}, r"row 2: columns differ|row 2, column 'prior'"),
        ({"prompt_id": "", "policy": "p", "pass_rate": 0.5}, r"row 2, column 'prompt_id': expected a non-empty string"),
        ({"prompt_id": "q", "policy": "p"}, r"row 2: columns differ from row 1 \(\['pass_rate'\]\)"),
    ],
)
def test_jsonl_errors_name_file_row_column(tmp_path, row, match):
    path = write_lines(tmp_path / "bad.jsonl", [{"prompt_id": "q0", "policy": "p", "pass_rate": 0.5}, row])
    with pytest.raises(TableError, match=match) as info:
        load_table(path)
    assert str(path) in str(info.value)


def test_bad_prior_and_samples_named(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [
        {"prompt_id": "q0", "policy": "p", "pass_rate": 0.5, "prior": 0.2, "n_samples": 3},
        {"prompt_id": "q1", "policy": "p", "pass_rate": 0.5, "prior": 1.2, "n_samples": 3},
    ])
    with pytest.raises(TableError, match=r"row 2, column 'prior': expected a number in \[0, 1\], got 1.2"):
        load_table(path)
    path = write_lines(tmp_path / "u.jsonl", [{"prompt_id": "q0", "policy": "p", "pass_rate": 0.5, "n_samples": 2.5}])
    with pytest.raises(TableError, match=r"row 1, column 'n_samples': expected an integer >= 1, got 2.5"):
        load_table(path)


def test_malformed_files(tmp_path):
    (tmp_path / "broken.jsonl").write_text('{"prompt_id": "q", "policy": "p", "pass_rate": 0.5}\n{oops\n')
    with pytest.raises(TableError, match=r"broken.jsonl, row 2: not valid JSON"):
        load_table(tmp_path / "broken.jsonl")
    (tmp_path / "short.csv").write_text("prompt_id,policy,pass_rate\nq,p,0.5\nq2,p\n")
    with pytest.raises(TableError, match=r"short.csv, row 3: wrong number of fields"):
        load_table(tmp_path / "short.csv")
    (tmp_path / "nocol.csv").write_text("prompt_id,pass_rate\nq,0.5\n")
    with pytest.raises(TableError, match=r"missing required column 'policy'"):
        load_table(tmp_path / "nocol.csv")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(TableError, match="no rows"):
        load_table(tmp_path / "empty.jsonl")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(TableError, match="unknown table format '.txt'"):
        load_table(tmp_path / "x.txt")
    with pytest.raises(TableError, match="no such file"):
        load_table(tmp_path / "missing.csv")


def test_from_columns_checks_lengths_and_names():
    with pytest.raises(TableError, match="different lengths"):
        PassRateTable.from_columns(prompt_id=["a"], policy=["p", "q"], pass_rate=[0.5])
    with pytest.raises(TableError, match="unknown column"):
        PassRateTable.from_columns(prompt_id=["a"], policy=["p"], pass_rate=[0.5], score=[1])
    with pytest.raises(TableError, match="row 0, column 'pass_rate'"):
        PassRateTable.from_columns(prompt_id=["a"], policy=["p"], pass_rate=[np.nan])


def test_v0_demo_loader(shared_data):
    t = load_v0_demo(shared_data / "v0_demo")
    assert len(t) == 3456 and len(t.policies) == 6
    assert set(t.split.tolist()) == {"context", "train_query", "test_query"}
    assert np.allclose(t.pass_rate * 10, np.round(t.pass_rate * 10))  # scores step 0.2 -> pass rates step 0.1
    for policy in t.policies:
        assert (t.policy == policy).sum() == 576
        assert ((t.policy == policy) & (t.split == "context")).sum() == 512
    assert all(isinstance(p, str) and p for p in t.prompt[:50])


def test_mmlupro_loaders(shared_data):
    models = load_mmlupro(shared_data / "mmlupro_29models", category="math")
    assert len(models.policies) == 29 and set(np.unique(models.pass_rate)) <= {0.0, 1.0}
    halves = load_any(shared_data / "mmlupro_29models")
    assert len(halves.policies) == 2 and halves.prior is not None
    weak, strong = (halves.select(halves.policy == p) for p in halves.policies)
    assert weak.pass_rate.mean() < strong.pass_rate.mean()
    assert np.array_equal(weak.prior, strong.pass_rate)  # each half's prior is the other half's pass rate
    assert (halves.n_samples >= 1).all() and halves.n_samples.max() <= 15


def test_load_any_rejects_unknown_folder(tmp_path):
    with pytest.raises(TableError, match="neither v0_demo nor mmlupro"):
        load_any(tmp_path)


# -- bad input, tried as a new user would -------------------------------------------------------------------


def test_unknown_column_is_named_with_the_known_ones(tmp_path):
    """A misspelled 'prior' must not be ignored (the bench would silently fall back to synthetic priors)."""
    path = write_lines(tmp_path / "t.jsonl", [{"prompt_id": "q", "policy": "p", "pass_rate": 0.5, "priro": 0.4}])
    with pytest.raises(TableError, match=r"t.jsonl, row 1: unknown column\(s\) \['priro'\]; known: \['prompt_id', "
                                         r"'policy', 'pass_rate', 'n_samples', 'prompt', 'prior', 'split'\]"):
        load_table(path)
    (tmp_path / "t.csv").write_text("prompt_id,policy,pass_rate,Prior\nq,p,0.5,0.4\n")
    with pytest.raises(TableError, match=r"t.csv, row 2: unknown column\(s\) \['Prior'\]"):
        load_table(tmp_path / "t.csv")
    path = write_lines(tmp_path / "u.jsonl", [{"prompt_id": "q", "policy": "p", "pass_rate": 0.5},
                                              {"prompt_id": "r", "policy": "p", "pass_rate": 0.5, "score": 1}])
    with pytest.raises(TableError, match=r"u.jsonl, row 2: unknown column\(s\) \['score'\]"):
        load_table(path)


@pytest.mark.parametrize("second, what", [(0.7, r"conflicting pass rates 0.5 and 0.7"), (0.5, r"pass_rate 0.5 in both")])
def test_repeated_prompt_and_policy_is_rejected_naming_both_rows(tmp_path, second, what):
    path = write_lines(tmp_path / "d.jsonl", [{"prompt_id": "q1", "policy": "p", "pass_rate": 0.5},
                                              {"prompt_id": "q1", "policy": "other", "pass_rate": 0.1},
                                              {"prompt_id": "q1", "policy": "p", "pass_rate": second}])
    with pytest.raises(TableError, match=rf"d.jsonl, rows 1 and 3: prompt_id 'q1' of policy 'p' appears twice "
                                         rf"\({what}\); each \(prompt_id, policy\) pair must appear once"):
        load_table(path)
    with pytest.raises(TableError, match=r"<columns>, rows 0 and 1: prompt_id 'a'"):
        PassRateTable.from_columns(prompt_id=["a", "a"], policy=["p", "p"], pass_rate=[0.5, 0.5])


def test_undecodable_bytes_name_the_file_and_row(tmp_path):
    good = b'{"prompt_id": "q", "policy": "p", "pass_rate": 0.5}\n'
    (tmp_path / "bin.jsonl").write_bytes(good + b"\xff\xfe\x00garbage\n")
    with pytest.raises(TableError, match=r"bin.jsonl, row 2: not UTF-8 text \(byte 0xff, byte 1 of the line\)"):
        load_table(tmp_path / "bin.jsonl")
    (tmp_path / "bin.csv").write_bytes(b"prompt_id,policy,pass_rate\nq,p,0.5\nq2,p,\x89PNG\n")
    with pytest.raises(TableError, match=r"bin.csv, row 3: not UTF-8 text \(byte 0x89, byte 6 of the line\)"):
        load_table(tmp_path / "bin.csv")


def test_a_csv_field_beyond_the_csv_limit_names_the_file_row_and_way_out(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("prompt_id,policy,pass_rate,prompt\nq,p,0.5,short\nq2,p,0.5," + "x" * 131_073 + "\n")
    with pytest.raises(TableError, match=r"long.csv, row 3: not valid CSV \(field larger than field limit .*\); a CSV "
                                         r"field holds at most 131,072 characters: keep long prompt texts in a .jsonl"):
        load_table(path)
    save_table(PassRateTable.from_columns(prompt_id=["q"], policy=["p"], pass_rate=[0.5], prompt=["x" * 131_073]),
               tmp_path / "long.jsonl")
    assert len(load_table(tmp_path / "long.jsonl").prompt[0]) == 131_073


def test_rows_are_line_numbers(tmp_path):
    """Blank lines and quoted fields over several lines do not shift the row named in an error."""
    (tmp_path / "gaps.jsonl").write_text('{"prompt_id": "q", "policy": "p", "pass_rate": 0.5}\n\n\n'
                                         '{"prompt_id": "r", "policy": "p", "pass_rate": 7}\n')
    with pytest.raises(TableError, match=r"gaps.jsonl, row 4, column 'pass_rate'"):
        load_table(tmp_path / "gaps.jsonl")
    (tmp_path / "multi.csv").write_text('prompt_id,policy,pass_rate,prompt\nq,p,0.5,"two\nlines"\n\nr,p,7,x\n')
    with pytest.raises(TableError, match=r"multi.csv, row 5, column 'pass_rate'"):
        load_table(tmp_path / "multi.csv")


def test_csv_header_with_a_byte_order_mark_or_a_repeated_column(tmp_path):
    (tmp_path / "bom.csv").write_bytes("prompt_id,policy,pass_rate\nq,p,0.5\n".encode("utf-8-sig"))
    assert load_table(tmp_path / "bom.csv").prompt_id.tolist() == ["q"]
    (tmp_path / "twice.csv").write_text("prompt_id,policy,pass_rate,pass_rate\nq,p,0.5,0.7\n")
    with pytest.raises(TableError, match=r"twice.csv, row 1: column\(s\) \['pass_rate'\] appear more than once"):
        load_table(tmp_path / "twice.csv")


def fake_v0_demo(root, train_lines):
    root.mkdir()
    (root / "prompt_dict.json").write_text(json.dumps({"dapomath_1": "1+1?", "dapomath_2": "2+2?"}))
    row = {"id": 1, "score": 0.2, "type": "context", "model": "m", "step": 16, "dataset": "dapomath"}
    (root / "context.jsonl").write_text(json.dumps(row) + "\n")
    (root / "train.jsonl").write_text("".join(line + "\n" for line in train_lines))
    (root / "test.jsonl").write_text("")
    return root


@pytest.mark.parametrize("line, match", [
    ('{"id": 2, "score": 0.2, "type": "tr', r"train.jsonl, row 2: not valid JSON"),
    ('{"id": 2, "score": "high", "type": "train_query", "model": "m", "step": 16, "dataset": "dapomath"}',
     r"train.jsonl, row 2, column 'score': expected a number in \[-1, 1\], got 'high'"),
    ('{"id": 9, "score": 0.2, "type": "train_query", "model": "m", "step": 16, "dataset": "dapomath"}',
     r"train.jsonl, row 2, column 'id': no prompt text for 'dapomath_9'"),
    ('{"id": 2, "type": "train_query", "model": "m", "step": 16, "dataset": "dapomath"}',
     r"train.jsonl, row 2: missing field 'score'"),
    ('[1, 2]', r"train.jsonl, row 2: expected a JSON object, got list"),
])
def test_a_corrupt_line_in_a_shared_v0_demo_folder_names_the_file_and_row(tmp_path, line, match):
    ok = '{"id": 2, "score": -1.0, "type": "train_query", "model": "m", "step": 16, "dataset": "dapomath"}'
    assert len(load_any(fake_v0_demo(tmp_path / "ok", [ok]))) == 2
    with pytest.raises(TableError, match=match):
        load_any(fake_v0_demo(tmp_path / "bad", [ok, line]))


def test_a_corrupt_shared_mmlupro_folder_names_the_file_row_and_column(tmp_path):
    root = tmp_path / "mmlu"
    root.mkdir()
    (root / "questions.jsonl").write_text(json.dumps({"question_id": 1, "question": "Q?", "options": ["a", "b"]}) + "\n")
    (root / "correct.csv").write_text("question_id,category,m1,m2\n1,math,1,0\n")
    assert load_mmlupro(root).pass_rate.tolist() == [1.0, 0.0]
    (root / "correct.csv").write_text("question_id,category,m1,m2\n1,math,1,yes\n")
    with pytest.raises(TableError, match=r"correct.csv, row 2, column 'm2': expected 1, 0 or blank, got 'yes'"):
        load_mmlupro(root)
    (root / "correct.csv").write_text("question_id,category,m1,m2\n1,math,1,0\n2,math,1,0\n")
    with pytest.raises(TableError, match=r"correct.csv, row 3: question_id '2' is not in .*questions.jsonl"):
        load_mmlupro(root)
    (root / "questions.jsonl").write_text('{"question_id": 1, "question": "Q?", "options": ["a"]}\n{"question_id"\n')
    with pytest.raises(TableError, match=r"questions.jsonl, row 2: not valid JSON"):
        load_mmlupro(root)
    with pytest.raises(ValueError, match=r"view='both'; expected one of \('models', 'halves'\)"):
        load_mmlupro(root, view="both")
