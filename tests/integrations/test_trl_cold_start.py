"""The first generation batch when every completion fails (docs/trl.md, "Priors", the first step): the value
model's cold start gives an informative prior, yet the default ``v05`` (``v05_eb``) fits sigma2 = 0 on a batch
of all-equal groups and puts weight 1 on the group means, so it trains on nothing there, like GRPO, whatever the
prior; ``v05_paper`` turns the same groups into advantage -prior."""

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")

from v05.baselines import Prior, RewardScale
from v05.integrations.trl.priors import UNINFORMED, ValueModelSource
from v05.integrations.trl.rows import PromptTable
from v05.integrations.trl.scoring import score_step
from v05.value import ValueModel

TEXTS = [f"What is {a} + {b}? Put the final answer in \\boxed{{}}." for a, b in [(2, 3), (4, 4), (7, 8), (9, 6)]]
K = 4


@pytest.fixture(scope="module")
def all_fail():
    """(rewards, group, cold-start prior mean, var) of a first batch of 4 prompts x 4 completions, all wrong."""
    table = PromptTable([(t, 0) for t in TEXTS], [{"prompt": t} for t in TEXTS])
    source = ValueModelSource(ValueModel.load("default"), context_size=128, history_steps=64, history_block=8)
    group = np.repeat(np.arange(len(TEXTS)), K)
    prior = source.predict(table, 0, np.zeros(len(TEXTS)), np.full(len(TEXTS), K))
    return np.zeros(len(group)), group, prior.mean, prior.var


def score(all_fail, estimator, mean=None, var=None):
    rewards, group, cold_mean, cold_var = all_fail
    prior = Prior(cold_mean if mean is None else mean, cold_var if var is None else var)
    return score_step(rewards, group, len(TEXTS), estimator=estimator, options={}, scale=RewardScale.parse("binary"),
                      prior=prior)


def test_the_cold_start_prior_is_informed_but_v05_trains_on_nothing(all_fail):
    _, _, mean, _ = all_fail
    assert np.all((0 < mean) & (mean < 0.5))  # read from the other half's failures: below the blind 1/2
    for prior in (mean, np.full(len(TEXTS), UNINFORMED[0])):
        s = score(all_fail, "v05", prior, np.full(len(TEXTS), UNINFORMED[1]))
        assert np.all(s.weight == 1.0) and np.all(s.advantage == 0.0)


def test_v05_paper_gives_the_all_fail_groups_advantage_minus_the_prior(all_fail):
    _, group, mean, _ = all_fail
    assert np.all(mean < 1 / (2 * np.sqrt(K)))  # |v - V| below the worst-case noise: the prior alone (w = 0)
    s = score(all_fail, "v05_paper")
    assert np.all(s.weight == 0.0)
    np.testing.assert_allclose(s.advantage, -mean[group], rtol=0, atol=1e-12)


def test_a_batch_mean_prior_cannot_help_an_all_fail_batch(all_fail):
    zero = np.zeros(len(TEXTS))  # the batch's own mean reward
    for estimator in ("v05", "v05_paper", "v05_bernoulli"):
        assert np.all(score(all_fail, estimator, zero).advantage == 0.0)
