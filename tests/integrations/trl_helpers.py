"""A tiny randomly initialised Qwen2 with a character tokenizer built in memory, a toy data set and reward
functions: the real TRL trainers run on them in a second on CPU (nothing is downloaded)."""

from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig

from v05.integrations.trl import V05Config

CHARS = list("0123456789+=? abcdefghijklmnopqrstuvwxyz")
PROMPTS = [f"what is {a}+{b}?" for a in range(4) for b in range(4)]
BASE = dict(use_cpu=True, bf16=False, gradient_checkpointing=False, per_device_train_batch_size=8,
            num_generations=4, max_completion_length=6, max_steps=2, report_to="none", save_strategy="no",
            logging_steps=1, seed=0, learning_rate=1e-3, disable_tqdm=True)


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer with <pad> (id 0) and <eos> (id 1)."""
    vocab = {"<pad>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<pad>")


def tiny_qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    """A 2-layer, 32-wide Qwen2 with random weights (about 20k parameters)."""
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(CHARS) + 2, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0,
                      eos_token_id=1, bos_token_id=None, tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg)


def dataset(n: int = 16, **columns) -> Dataset:
    """The first ``n`` toy prompts, plus any extra columns (lists of length n)."""
    return Dataset.from_dict({"prompt": PROMPTS[:n], **columns})


def parity_reward(completions, **kwargs):
    """1 if the completion holds an odd number of digits: varied, and fixed by the sampling seed."""
    return [float(sum(ch.isdigit() for ch in c) % 2) for c in completions]


def v05_args(tmp_path, **overrides) -> V05Config:
    return V05Config(output_dir=str(tmp_path / "v05"), **{**BASE, **overrides})


def grpo_args(tmp_path, **overrides) -> GRPOConfig:
    return GRPOConfig(output_dir=str(tmp_path / "grpo"), **{**BASE, **overrides})
