"""The engine settings behind the regime map: a fresh prompt stream, a warm-up on short chains, and the
warm-up cache key that keeps older caches valid."""

import hashlib
import json

import numpy as np
import pytest

from v05_testing.engine import tiny
from v05.rl.config import TrainConfig
from v05.rl.loop import train
from v05.rl.prompts import PromptStream
from v05.rl.setup import warmup_key
from v05.rl.task import make_problems


def test_max_terms_bounds_the_chains_and_keeps_the_default_draws():
    a = make_problems(200, np.random.default_rng(0), distinct=False)
    b = make_problems(200, np.random.default_rng(0), distinct=False, max_terms=8)
    assert a == b  # the default draws the same numbers as before the option existed
    short = make_problems(200, np.random.default_rng(0), distinct=False, max_terms=3)
    assert {p.level for p in short} == {2, 3}
    with pytest.raises(ValueError, match=r"max_terms == 9, must be in \[2, 8\]"):
        make_problems(1, np.random.default_rng(0), max_terms=9)


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"task.stream": "once"}, ValueError, "task.stream='once'; expected one of"),
    ({"prior.source": "oracle"}, ValueError, "prior.source='oracle'; expected one of"),
    ({"warmup.max_terms": 1}, ValueError, "warmup.max_terms == 1, must be >= 2"),
    ({"warmup.max_terms": 9}, ValueError, "warmup.max_terms == 9, must be <= 8"),
    ({"task.stream": "fresh"}, ValueError,
     r"task.stream='fresh' reads every prompt once: task.n_train \(1024\) must be >= the prompts this run can read \(5024"),
])
def test_bad_regime_settings_are_named(settings, error, message):
    with pytest.raises(error, match=message):
        TrainConfig().with_settings(settings)


def test_prompts_read_max_bounds_every_allocation():
    assert TrainConfig().with_settings({"total_rollouts": 1280}).prompts_read_max == 320  # 10 steps of 32 x 4
    assert TrainConfig().with_settings({"total_rollouts": 1281}).prompts_read_max == 352  # an 11th step starts
    dyn = TrainConfig().with_settings({"total_rollouts": 1280, "method.allocation": "dynamic", "method.estimator": "dapo",
                                       "method.max_resample_rounds": 2})
    assert dyn.prompts_read_max == 32 * (10 + 2)


def test_a_fresh_stream_never_repeats_a_prompt_and_refuses_a_second_epoch():
    stream = PromptStream(10, np.random.default_rng(0), recur=False)
    seen = np.concatenate([stream.next(4), stream.next(6)])
    assert sorted(seen.tolist()) == list(range(10))
    with pytest.raises(RuntimeError, match="reads every prompt once and its 10 prompts are spent"):
        stream.next(1)


def test_a_fresh_run_reads_each_prompt_once(tmp_path):
    cfg = tiny(**{"method.estimator": "grpo", "task.stream": "fresh", "task.n_train": 64})
    result = train(cfg, tmp_path, tensorboard=False)
    state = json.loads((tmp_path / "checkpoints" / "step_000008" / "state.json").read_text())
    read = state["stream"]["order"][: state["stream"]["pos"]]
    assert len(read) == len(set(read)) == 8 * cfg.method.prompts_per_step and state["stream"]["epoch"] == 0
    assert result.rollouts >= cfg.total_rollouts


def test_warmup_key_is_unchanged_for_default_settings_and_follows_max_terms():
    key = warmup_key(TrainConfig())
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    assert digest == "01945b1b99ef"  # the cache name of warm-ups written before max_terms and stream existed
    assert warmup_key(TrainConfig().with_settings({"task.stream": "fresh", "task.n_train": 6000})) != key  # other pool
    assert warmup_key(TrainConfig().with_settings({"task.stream": "fresh", "task.n_train": 6000})) == \
        warmup_key(TrainConfig().with_settings({"task.n_train": 6000}))  # the stream does not change the warm-up
    assert warmup_key(TrainConfig().with_settings({"warmup.max_terms": 4}))["warmup"]["max_terms"] == 4


def test_a_short_chain_warmup_is_a_different_cached_policy(tmp_path):
    short = tiny(**{"method.estimator": "grpo", "warmup.max_terms": 3, "total_rollouts": 32})
    full = tiny(**{"method.estimator": "grpo", "total_rollouts": 32})
    train(short, tmp_path / "a", warmup_cache=tmp_path / "cache", tensorboard=False)
    train(full, tmp_path / "b", warmup_cache=tmp_path / "cache", tensorboard=False)
    assert len(list((tmp_path / "cache").glob("warmup_*.safetensors"))) == 2
