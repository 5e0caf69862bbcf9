"""A tiny random chat model (Qwen2) with a character tokenizer of every printable ASCII character, built in
memory: ``Yes`` and ``No`` differ at their first letter, and an optional small chat template."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHARS = [chr(i) for i in range(32, 127)] + ["\n"]
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def printable_tokenizer(chat: bool = False) -> PreTrainedTokenizerFast:
    """<pad> (0), <eos> (1), the two role markers, then one token per character; ``chat``: with :data:`CHAT`."""
    specials = ["<pad>", "<eos>", "<|user|>", "<|assistant|>"]
    vocab = {t: i for i, t in enumerate(specials + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    out = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<pad>",
                                  additional_special_tokens=specials[2:])
    if chat:
        out.chat_template = CHAT
    return out


def qwen2(vocab_size: int, seed: int = 0) -> Qwen2ForCausalLM:
    """A 2-layer, 32-wide Qwen2 with random weights."""
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0,
                      eos_token_id=1, bos_token_id=None, tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg)
