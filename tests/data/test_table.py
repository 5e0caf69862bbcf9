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
        ({"prompt_id": "q", "policy": "p", "pass_rate": 1.5}, r"row 2, column 'pass_rate': expected a number in \[0, 1\], got 1.5"),
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
