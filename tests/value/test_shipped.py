"""The shipped default weights, with the real MiniLM encoder (offline)."""

from pathlib import Path

import numpy as np
import pytest

from v05.value import ValueModel, shipped_models

V0_DEMO = Path(__file__).resolve().parents[3] / "shared" / "data" / "v0_demo"


def test_default_weights_load_and_predict(tmp_path):
    assert "default" in shipped_models()
    vm = ValueModel.load("default", cache_dir=tmp_path)
    assert vm.encoder == "minilm-l6-v2" and vm.coef_.shape == (385,)
    context = ["What is 1 + 1?", "Compute 3 * 4.", "Prove that there are infinitely many primes p with p = 4k + 3.",
               "Find all functions f: R -> R with f(x + f(y)) = f(x) + y for all reals x, y."]
    mean, var = vm.predict(context, [1.0, 1.0, 0.2, 0.1], ["What is 2 + 5?", "Let n be a positive integer..."])
    assert mean.shape == var.shape == (2,)
    assert np.all((mean > 0) & (mean < 1) & (var > 0))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not V0_DEMO.is_dir(), reason=f"needs the shared data at {V0_DEMO} (absent here)")
def test_default_on_v0_demo_uses_history(tmp_path):
    from v05.data import load_v0_demo

    table = load_v0_demo(V0_DEMO)
    pol = "Qwen3-4B-Instruct@256"
    mine, others = table.select(table.policy == pol), table.select(table.policy != pol)
    shared = np.flatnonzero(np.isin(mine.prompt, others.prompt))[:16]
    ctx = np.setdiff1d(np.arange(len(mine)), shared)[:64]
    # history: other policies' rows on the targets, plus 30 rows each to place their abilities (few texts to embed)
    first_rows = np.concatenate([np.flatnonzero(others.policy == p)[:30] for p in others.policies])
    others = others.select(np.union1d(np.flatnonzero(np.isin(others.prompt, mine.prompt[shared])), first_rows))
    vm = ValueModel.load("default", cache_dir=tmp_path)
    args = (mine.prompt[ctx].tolist(), mine.pass_rate[ctx], mine.prompt[shared].tolist())
    m_cold, v_cold = vm.predict(*args, context_n_samples=10)
    m_hist, v_hist = vm.predict(*args, history=others, context_n_samples=10)
    assert np.all(v_hist < v_cold)
    err = lambda m: np.mean((m - mine.pass_rate[shared]) ** 2)  # noqa: E731
    assert err(m_hist) < err(m_cold)
