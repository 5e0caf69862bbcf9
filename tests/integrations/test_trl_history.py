"""V05GRPOTrainer's value-free prior sources against the real TRL on CPU (a tiny random Qwen2):
prior_source='history' (each prompt's own outcomes in the run) and 'none'."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
from trl_helpers import char_tokenizer, dataset, parity_reward, tiny_qwen2, v05_args

from v05.integrations.trl import V05GRPOTrainer
from v05.integrations.trl.priors import HistorySource
from v05.integrations.trl.state import FILE as STATE_FILE
from v05.value import HistoryPrior

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning"),
              pytest.mark.usefixtures("one_torch_thread")]



def _trainer(args, data=None):
    return V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, args=args, train_dataset=data or dataset(),
                          processing_class=char_tokenizer())


def test_history_prior_reads_each_prompts_own_outcomes_and_is_checkpointed(tmp_path):
    """Two prompts recurring over 2 batches: the first batch has no history (each prompt gets the Beta fitted on
    the other's first round: the cold start), the second gets each prompt's posterior from the first batch's
    outcomes; the prior metrics are logged, and the history is saved with the checkpoint and restored on
    resume."""
    args = v05_args(tmp_path, prior_source="history", estimator="v05", max_steps=2, save_strategy="steps",
                    save_steps=1)
    trainer = _trainer(args, dataset(2))
    trainer.train()
    assert isinstance(trainer.v05_prior, HistorySource)
    logged = [h for h in trainer.state.log_history if "v05/prior_mean" in h]
    assert len(logged) == 2 and all(np.isfinite(h["v05/prior_mse"]) for h in logged)
    history = trainer.v05_prior.history
    assert history.step == [0, 0, 1, 1]
    cold = HistoryPrior().cold_start(history.pass_rate[:2], history.n_samples[:2])  # no top-ups: round 1 = all
    assert logged[0]["v05/prior_mean"] == pytest.approx(float(cold.mean.mean()))
    last = trainer.v05_last_step
    expected = HistoryPrior().predict(history, 1, list(last.prompts))
    np.testing.assert_allclose(last.prior.mean, expected.mean)
    np.testing.assert_allclose(last.prior.var, expected.var)
    assert logged[1]["v05/prior_mean"] == pytest.approx(float(expected.mean.mean()))

    ckpt = tmp_path / "v05" / "checkpoint-2"
    assert json.loads((ckpt / STATE_FILE).read_text())["state"]["prior"]["history"] == history.state_dict()
    resumed = _trainer(v05_args(tmp_path, prior_source="history", estimator="v05", max_steps=3), dataset(2))
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.v05_prior.history.step == [0, 0, 1, 1, 2, 2]
    assert resumed.v05_prior.history.pass_rate[:4] == history.pass_rate


def test_no_prior_with_a_value_free_estimator(tmp_path):
    trainer = _trainer(v05_args(tmp_path, prior_source="none", estimator="eb_batch"))
    trainer.train()
    assert trainer.v05_prior is None and trainer.v05_last_step.prior is None
    assert not any("v05/prior_mean" in h for h in trainer.state.log_history)


@pytest.mark.parametrize("config, message", [
    ({"estimator": "v05"}, r"prior_source='none' gives no prior, but estimator='v05' fuses a prior"),
    ({"estimator": "grpo", "k_max": 8}, r"prior_source='none' gives no prior, but k_max=8 plans top-ups"),
])
def test_none_with_a_method_that_needs_a_prior_fails_when_the_config_is_built(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        v05_args(tmp_path, prior_source="none", **config)
