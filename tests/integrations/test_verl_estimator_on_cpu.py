"""Our estimators through verl's own ``ray_trainer.compute_advantage`` on hand-built ``DataProto`` batches."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import v05.integrations.verl.plugin  # noqa: F401  (registers, as `import verl` does through the entry point)
from v05.baselines import Prior, compute
from v05.integrations.verl.estimator import make_adv_estimator, our_name
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage


def ragged_batch(seed: int = 0, sizes=(3, 1, 5, 2, 4), length: int = 7, prior_as_baselines: bool = True):
    """Rows of ragged groups in shuffled order; reward on each response's last token; per-row prior."""
    rng = np.random.default_rng(seed)
    uids = np.concatenate([[f"uid-{g}"] * k for g, k in enumerate(sizes)])
    order = rng.permutation(len(uids))
    uids = uids[order]
    scores = rng.integers(0, 2, len(uids)).astype(np.float32)
    prior_of = {f"uid-{g}": p for g, p in enumerate(rng.uniform(0.05, 0.95, len(sizes)))}
    prior = np.array([prior_of[u] for u in uids])
    lengths = rng.integers(1, length + 1, len(uids))
    mask = (torch.arange(length)[None, :] < torch.as_tensor(lengths)[:, None]).float()  # (bs, T)
    rewards = torch.zeros(len(uids), length)
    rewards[torch.arange(len(uids)), torch.as_tensor(lengths) - 1] = torch.as_tensor(scores)
    tensors = {"token_level_rewards": rewards, "response_mask": mask}
    if prior_as_baselines:
        tensors["reward_baselines"] = torch.as_tensor(prior, dtype=torch.float32)
    data = DataProto.from_dict(tensors=tensors, non_tensors={"uid": uids.astype(object)})
    return data, scores.astype(np.float64), uids, prior, mask


@pytest.mark.parametrize("name", ["v05", "v05_eb", "v05_paper", "v05_eb_loo", "v05_bernoulli", "v05_prior"])
def test_compute_advantage_matches_v05_baselines(name):
    data, scores, uids, prior, mask = ragged_batch()
    out = compute_advantage(data, adv_estimator=name, config=None)
    prior32 = np.float32(prior).astype(np.float64)  # reward_baselines is a float32 tensor
    expected = compute(our_name(name), scores, uids, prior=prior32).advantage
    np.testing.assert_allclose(out.batch["advantages"].numpy(), expected[:, None] * mask.numpy(), rtol=1e-6, atol=1e-7)
    assert torch.equal(out.batch["advantages"], out.batch["returns"])
    assert (out.batch["advantages"][mask == 0] == 0).all()


@pytest.mark.parametrize("ours, norm_by_std", [("v05_grpo", True), ("v05_mean", False)])
def test_grpo_and_mean_match_verls_grpo(ours, norm_by_std):
    data, *_ = ragged_batch(sizes=(3, 2, 5, 2, 4, 6), prior_as_baselines=False)
    theirs = compute_advantage(data, adv_estimator="grpo", norm_adv_by_std_in_grpo=norm_by_std).batch["advantages"]
    data, *_ = ragged_batch(sizes=(3, 2, 5, 2, 4, 6), prior_as_baselines=False)
    mine = compute_advantage(data, adv_estimator=ours).batch["advantages"]
    torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(2, 6), min_size=2, max_size=6))
def test_row_order_does_not_matter(seed, sizes):
    data, scores, uids, prior, mask = ragged_batch(seed, tuple(sizes))
    fn = make_adv_estimator("v05_eb")
    adv, _ = fn(data.batch["token_level_rewards"], data.batch["response_mask"], uids, prior=prior)
    perm = np.random.default_rng(seed).permutation(len(uids))
    adv_p, _ = fn(data.batch["token_level_rewards"][perm], data.batch["response_mask"][perm], uids[perm], prior=prior[perm])
    torch.testing.assert_close(adv_p, adv[perm], rtol=1e-6, atol=1e-7)


def test_prior_var_scale_and_options_reach_the_estimator():
    data, scores, uids, prior, mask = ragged_batch()
    rewards = data.batch["token_level_rewards"] * 2  # rewards on a 0/2 scale
    fn = make_adv_estimator("v05_prior_var")
    adv, _ = fn(rewards, data.batch["response_mask"], uids, prior=prior, prior_var=np.full(len(uids), 0.02), scale=(0, 2))
    expected = compute("v05_prior_var", 2 * scores, uids, prior=prior, prior_var=np.full(len(uids), 0.02), scale=(0, 2))
    np.testing.assert_allclose(adv.numpy(), expected.advantage[:, None] * mask.numpy(), rtol=1e-6, atol=1e-6)
    adv, _ = make_adv_estimator("v05_eb")(data.batch["token_level_rewards"], data.batch["response_mask"], uids,
                                          prior=prior, options={"tau2": float("inf")})
    mean = compute("mean", scores, uids).advantage  # tau2 = inf ignores the prior
    np.testing.assert_allclose(adv.numpy(), mean[:, None] * mask.numpy(), atol=1e-6)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"prior": None}, ValueError, "fuses a prior"),
    ({"prior": np.full(3, 0.5)}, ValueError, r"shape \(15,\)"),
    ({"prior": np.full(15, 1.5)}, ValueError, r"prior\[0\] = 1.5"),
    ({"index": None}, ValueError, "uid of every row"),
    ({"options": {"tau": 1.0}}, TypeError, "unknown option"),
])
def test_bad_input_fails_clearly(kwargs, exc, match):
    data, scores, uids, prior, mask = ragged_batch(prior_as_baselines=False)
    call = {"index": uids, "prior": prior, **kwargs}
    with pytest.raises(exc, match=match):
        make_adv_estimator("v05")(data.batch["token_level_rewards"], data.batch["response_mask"], **call)


def test_nan_reward_is_named_with_its_row_and_group():
    data, scores, uids, prior, mask = ragged_batch(prior_as_baselines=False)
    rewards = data.batch["token_level_rewards"].clone()
    rewards[4, 0] = float("nan")
    with pytest.raises(ValueError, match=rf"rewards\[4\] = nan \(group '{uids[4]}'\)"):
        make_adv_estimator("v05")(rewards, data.batch["response_mask"], uids, prior=prior)


def test_both_prior_channels_are_refused():
    data, scores, uids, prior, mask = ragged_batch()
    with pytest.raises(ValueError, match="both prior= and reward_baselines="):
        make_adv_estimator("v05")(data.batch["token_level_rewards"], data.batch["response_mask"], uids, prior=prior,
                                  reward_baselines=data.batch["reward_baselines"])


def test_a_per_prompt_prior_keyed_by_uid_gives_the_per_row_result():
    data, scores, uids, prior, mask = ragged_batch(prior_as_baselines=False)
    ids, first = np.unique(uids, return_index=True)
    per_prompt = Prior(prior[first], np.full(len(ids), 0.02), ids=ids.astype(object))
    fn = make_adv_estimator("v05_prior_var")
    rows, _ = fn(data.batch["token_level_rewards"], data.batch["response_mask"], uids, prior=prior,
                 prior_var=np.full(len(uids), 0.02))
    prompts, _ = fn(data.batch["token_level_rewards"], data.batch["response_mask"], uids, prior=per_prompt)
    assert torch.equal(rows, prompts)
    with pytest.raises(ValueError, match="group id 'uid-0' has no row in the prior"):
        fn(data.batch["token_level_rewards"], data.batch["response_mask"], uids,
           prior=Prior(prior[first][1:], np.full(len(ids) - 1, 0.02), ids=ids[1:].astype(object)))
