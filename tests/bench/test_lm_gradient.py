"""The language-model gradient benchmark: sketched score gradients against explicit backward passes, the split-half
reference against a model with a known gradient, the bootstrap against the cell figures, and a whole run on a
tiny random chat model (SmolLM2 itself only in the slow test)."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from v05.bench import gradient as gb
from v05.bench import lm_gradient as lg
from v05.bench.lm_gradient_report import write_report
from v05.cli import app
from v05_testing.chat import printable_tokenizer, qwen2


@pytest.fixture(scope="module")
def chat():
    tok = printable_tokenizer(chat=True)
    return qwen2(len(tok)), tok


def sequence_logprob(model, prompt, completion, temperature):
    """sum_t log pi_T(y_t | x, y_<t) of one completion with gradient: the plain reference."""
    ids = torch.tensor([prompt + completion])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1] / temperature
    return torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(completion)[:, None]).sum()


def test_sketches_are_the_per_completion_weight_gradients_times_the_sketch(chat):
    model, tok = chat
    settings = lg.LMGradientSettings.quick(max_new_tokens=6, rank=3)
    prompts = lg.prompt_ids(tok, ["What is 2 + 3?", "Hi"])  # different lengths: padding must not leak
    completions = lg.sample(model, tok, prompts, 3, settings, seed=0)
    per_row = [prompts[i // 3] for i in range(6)]
    sketches = lg.score_sketches(model, per_row, completions, settings, seed=5)
    assert sketches.shape == (6, lg.sketch_size(model, 3))
    linears = lg.sketched_linears(model)
    gen = torch.Generator().manual_seed(5)
    sketch = [torch.randn(3, m.in_features, generator=gen) / 3**0.5 for m in linears]
    for i in range(6):  # reference: one backward pass per completion, the full weight gradient, then the sketch
        model.zero_grad()
        sequence_logprob(model, per_row[i], completions[i], settings.temperature).backward()
        full = torch.cat([(m.weight.grad @ a.T).reshape(-1) for m, a in zip(linears, sketch)]).numpy()
        assert np.allclose(sketches[i], full, atol=1e-5 * np.abs(full).max())
    assert all(p.requires_grad for p in model.parameters())  # restored


def test_the_sketch_preserves_inner_products_on_average():
    """E[A^T A] = I: the mean over sketches of <G1 A^T, G2 A^T> is <G1, G2>."""
    rng = np.random.default_rng(0)
    g1, g2 = rng.normal(size=(2, 5, 40))
    vals = [np.sum((g1 @ a.T) * (g2 @ a.T)) for a in rng.normal(size=(4000, 2, 40)) / np.sqrt(2)]
    assert np.mean(vals) == pytest.approx(np.sum(g1 * g2), abs=4 * np.std(vals) / np.sqrt(4000))


def synthetic_pool(rng, m=5, n=16, dim=30):
    """Score gradients with a known g: s = (r - p) v_x + noise, so E s = 0 and E[r s] = p(1-p) v_x."""
    p = np.linspace(0.2, 0.8, m)
    v = rng.normal(size=(m, dim))
    r = (rng.random((m, n)) < p[:, None]).astype(float)
    s = (r - p[:, None])[..., None] * v[:, None, :] + rng.normal(size=(m, n, dim))
    g = (p * (1 - p))[:, None] * v
    return r, s.reshape(m * n, dim), g.mean(0)


def test_the_split_half_reference_is_unbiased_for_the_exact_figures():
    """Over many pools, the reference's <g_hat, U_B> and <U_A, U_B> average to <g_hat, g> and ||g||^2."""
    rng = np.random.default_rng(0)
    m, n = 5, 16
    row = np.arange(m * n).reshape(m, n)
    dots, exact_dots, gsq = [], [], []
    for _ in range(400):
        r, s, g = synthetic_pool(rng)
        ref = lg.reference_pool(r, row, s @ s.T)
        picks = gb.subsets(m, n // 2, 4, 10, rng)
        weights, _ = gb.repeat_weights("rloo", None, ref.pool, picks)
        dots.append(np.mean(weights @ ref.pool.along))
        exact_dots.append(np.mean(weights @ (s @ g)))
        gsq.append(ref.pool.g_sq / (g @ g))
    assert np.mean(dots) == pytest.approx(np.mean(exact_dots), abs=3 * np.std(np.subtract(dots, exact_dots)) / 20)
    assert np.mean(gsq) == pytest.approx(1.0, abs=3 * np.std(gsq) / 20)


def test_reference_pieces_match_explicit_vectors():
    rng = np.random.default_rng(1)
    r, s, _ = synthetic_pool(rng)
    m, n = r.shape
    row = np.arange(m * n).reshape(m, n)
    ref = lg.reference_pool(r, row, s @ s.T)

    def loo(half):
        out = np.zeros(s.shape[1])
        for x in range(m):
            rr = r[x, half]
            for j, i in enumerate(np.arange(n)[half]):
                out += (rr[j] - (rr.sum() - rr[j]) / (len(rr) - 1)) * s[row[x, i]] / (m * len(rr))
        return out

    u_a, u_b = loo(slice(0, n // 2)), loo(slice(n // 2, n))
    assert ref.pool.g_sq == pytest.approx(u_a @ u_b)
    assert np.allclose(ref.pool.along, s @ u_b)
    assert np.allclose(ref.pool.pass_rate, r[:, n // 2 :].mean(1))
    assert np.array_equal(ref.pool.rewards, r[:, : n // 2])


def test_the_bootstrap_without_resampling_is_the_cell():
    rng = np.random.default_rng(2)
    r, s, _ = synthetic_pool(rng)
    m, n = r.shape
    ref = lg.reference_pool(r, np.arange(m * n).reshape(m, n), s @ s.T)
    picks = gb.subsets(m, n // 2, 4, 30, rng)
    for name in ("grpo", gb.FLOOR, "mean"):
        weights, _ = gb.repeat_weights(name, None, ref.pool, picks)
        boot = lg.bootstrap_errors(*lg.bootstrap_parts(weights, ref), ref.cross, np.ones((1, m)))
        assert boot[0] == pytest.approx(gb.cell_stats(weights, ref.pool)["rel_sq_error"])
        # A resample that doubles one prompt equals the cell on the pool with that prompt duplicated.
        twice = np.r_[0, 0, 2:m] if m > 2 else None
        counts = np.bincount(twice, minlength=m)[None].astype(float)
        dup = lg.reference_pool(r[twice], np.arange(m * n).reshape(m, n), gram_of(s, twice, n))
        w_dup, _ = gb.repeat_weights(name, None, dup.pool, picks[:, twice])
        assert lg.bootstrap_errors(*lg.bootstrap_parts(weights, ref), ref.cross, counts)[0] == pytest.approx(
            gb.cell_stats(w_dup, dup.pool)["rel_sq_error"])


def gram_of(s, prompts, n):
    rows = np.concatenate([np.arange(x * n, (x + 1) * n) for x in prompts])
    return s[rows] @ s[rows].T


def test_silent_groups_are_counted():
    """A group whose k rewards are equal gives the group mean no gradient; b = 0 silences only all-wrong groups."""
    pool = gb.Pool(np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]], float), np.arange(12).reshape(3, 4),
                   np.eye(12), np.zeros(12), 1.0, np.full(3, 0.5), np.full(3, 0.5))
    picks = np.broadcast_to(np.arange(4), (2, 3, 4))
    assert gb.repeat_weights("mean", None, pool, picks)[1].tolist() == [[True, True, False]] * 2
    assert gb.repeat_weights(gb.NO_BASELINE, None, pool, picks)[1].tolist() == [[False, True, False]] * 2


def test_candidates_and_the_batch_spread():
    qs = lg.candidates(16, 0)
    assert len(qs) == len(set(qs)) == 16 and qs[1][0] != qs[0][0]
    assert all(q.startswith("What is ") and a.isdigit() for q, a in qs)
    rates = np.repeat([0.0, 0.25, 0.5, 1.0], 4)
    batch, context = lg.choose_batch(rates, 4, 0)
    assert sorted(rates[batch].tolist()) == [0.0, 0.25, 0.5, 1.0] and len(context) == 12
    assert not set(batch) & set(context)


@pytest.mark.parametrize(("changes", "message"), [
    ({"pool": 7}, "pool == 7: must be an even number"),
    ({"group_sizes": (8,), "pool": 8}, r"group size 8 exceeds half the pool \(4\)"),
    ({"candidates": 10}, "multiple of 4"),
    ({"prompts": 8, "candidates": 8}, "at least 2"),
])
def test_bad_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        lg.LMGradientSettings.quick(**changes)


def first_char_is_digit(texts, answers):
    """A real verifiable reward the random model's parameters move (the first character a digit)."""
    return np.array([float(t[:1].isdigit()) for t in texts])


def test_a_run_measures_every_cell_reports_and_reuses_its_cache(chat, tmp_path):
    settings = lg.LMGradientSettings.quick(prompts=6, pool=16, candidates=8, max_new_tokens=4, group_sizes=(2, 4, 8))
    ticks = []
    report = lg.run(settings, tmp_path, policy=chat, reward=first_char_is_digit, tick=lambda t, n: ticks.append(n))
    assert sum(ticks) == lg.units(settings)
    assert len(report["cells"]) == lg.cell_count(settings) and len(report["batch"]) == 6
    floor = {c["k"]: c for c in report["cells"] if c["estimator"] == gb.FLOOR}
    for c in report["cells"]:
        lo, hi = c["rel_sq_error_ci"]
        assert lo <= c["rel_sq_error"] <= hi and 0 <= c["silent_share"] <= 1
        assert c["excess"] == pytest.approx(c["rel_sq_error"] - floor[c["k"]]["rel_sq_error"])
    paths = write_report(report, tmp_path)
    assert "| V0.5 `v05_eb`, value-model prior |" in paths["markdown"].read_text()
    assert paths["png"].stat().st_size > 10_000 and json.loads(paths["json"].read_text())["cells"]
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    again = lg.run(lg.LMGradientSettings(**{**settings.__dict__, "repeats": 10}), tmp_path, policy=chat,
                   reward=first_char_is_digit)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == stamp  # nothing redrawn
    assert again["reference"] == report["reference"]
    with pytest.raises(ValueError, match="other settings"):
        lg.run(lg.LMGradientSettings(**{**settings.__dict__, "temperature": 1.0}), tmp_path, policy=chat,
               reward=first_char_is_digit)


def test_cli_rejects_bad_policy_settings_in_one_line(tmp_path):
    for args, message in ((["--policy", "gpt"], "--policy"), (["--quick"], "--quick: only with --policy smollm2"),
                          (["--policy", "smollm2", "--pool", "7"], "pool == 7")):
        res = CliRunner().invoke(app, ["bench", "gradient", "--out", str(tmp_path), *args])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_quick_run_on_smollm2(tmp_path):
    res = CliRunner().invoke(app, ["bench", "gradient", "--policy", "smollm2", "--quick", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "gradient.json").read_text())
    assert report["policy"] == "SmolLM2-135M-Instruct" and report["sketch_size"] == 155_520


def test_reference_check_pairs_every_cell_on_the_built_in_task():
    from v05.rl.task import make_problems
    from v05_testing.engine import short_chain_policy

    rows = lg.reference_check(short_chain_policy(), make_problems(6, np.random.default_rng(0), max_terms=3), 32,
                              (2, 4), 20, 1.0)
    assert len(rows) == 2 * sum(p in (None, "oracle") for _, p in lg.ROWS)
    assert all(np.isfinite(r["exact"]) and np.isfinite(r["reference"]) for r in rows)
    by = {(r["estimator"], r["k"]): r for r in rows}
    for k in (2, 4):  # RLOO is the group mean rescaled: equal after the best scale under either reference
        assert by[("rloo", k)]["exact"] == pytest.approx(by[("mean", k)]["exact"])
        assert by[("rloo", k)]["reference"] == pytest.approx(by[("mean", k)]["reference"])
