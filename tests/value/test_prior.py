"""The value-model prior: outcome history, the context/history split, and the remembered text difficulties."""

import numpy as np
import pytest

from v05_testing.tables import arithmetic_table
from v05.value.prior import OutcomeHistory, ValueModelPrior
from v05.value import ValueModel


def test_history_checks_and_round_trip():
    h = OutcomeHistory()
    h.add(-1, ["a=", "b="], [0.5, 1.0], [4, 4])
    h.add(3, ["c="], [0.25], [8])
    assert len(h) == 3
    assert OutcomeHistory.from_state_dict(h.state_dict()).state_dict() == h.state_dict()
    with pytest.raises(ValueError, match="step 2 is before the last recorded step 3"):
        h.add(2, ["d="], [0.0], [1])
    with pytest.raises(ValueError, match=r"pass rates must lie in \[0, 1\]"):
        h.add(4, ["d="], [1.5], [1])
    with pytest.raises(ValueError, match="1 prompts, 2 pass rates"):
        h.add(4, ["d="], [0.1, 0.2], [1, 1])


def test_remembered_difficulties_match_the_model():
    table = arithmetic_table()
    plain = ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=500).fit(table)
    texts = sorted(set(table.prompt.tolist()))
    fast = ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=500).fit(table)
    fast.text_difficulty(texts)  # memoised in one batch, as the RL loop does
    assert np.allclose(fast.text_difficulty(texts[:5]), plain.text_difficulty(texts[:5]))
    assert np.allclose(fast.text_difficulty(["9+9+9="]), plain.text_difficulty(["9+9+9="]))  # unknown text
    ctx = texts[:10]
    a = fast.predict(ctx, np.linspace(0, 1, 10), texts[10:20])
    b = plain.predict(ctx, np.linspace(0, 1, 10), texts[10:20])
    assert np.allclose(a, b)


def test_prior_uses_recent_rows_as_context_and_older_ones_as_history(tiny_value_model):
    prior = ValueModelPrior(tiny_value_model, context_size=2, history_steps=5, history_block=2)
    h = OutcomeHistory()
    with pytest.raises(ValueError, match="the outcome history is empty"):
        prior.predict(h, 1, ["1+1="])
    h.add(1, ["1+1=", "2+2="], [1.0, 1.0], [4, 4])
    h.add(2, ["5-3+1-8+9-2+7-1="], [0.0], [4])
    h.add(3, ["3+3="], [1.0], [4])
    out = prior.predict(h, 4, ["1+1=", "5-3+1-8+9-2+7-1="])
    mean, var = out.mean, out.var
    assert mean.shape == var.shape == (2,) and np.all((mean >= 0) & (mean <= 1)) and np.all(var > 0)
    assert mean[0] > mean[1]  # solved before vs failed before
