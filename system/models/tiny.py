"""A tiny model and tokenizer built here, offline: the CPU demo's policy and the tests' model.

The tokenizer is a byte-level BPE trained with `tokenizers` on the protocol's own text (task
descriptions, prompts, tool calls), wrapped as a Hugging Face fast tokenizer with a ChatML chat
template that declares tools the way Qwen models do. The model is a Qwen3-architecture decoder
built from a config (random weights): nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{ '<|im_start|>system\\nYou can call this tool:\\n<tools>\\n' }}"
    "{%- for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{%- endfor %}"
    '{{ \'</tools>\\nCall it as <tool_call>{"name": ..., "arguments": {...}}</tool_call>.<|im_end|>\\n\' }}'
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'tool' %}"
    "{{ '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    """Text the tokenizer should compress well: everything the protocol writes and reads."""
    from simworkers.catalog import all_tasks
    from simworkers.query import near_reference_query
    from simworkers.result import SimResult
    from system.agent.protocol import first_message, tool_schema

    texts = []
    for task in all_tasks():
        query = near_reference_query(task, 0)
        fake = SimResult("ok", {m.name: 1.234e-6 for m in task.metrics})
        texts.append(first_message(task, query, 5, query.initial, fake))
        texts.append(json.dumps(tool_schema(task)))
        args = {p.name: f"{p.reference:.3g}" for p in task.params}
        texts.append(
            "<Analyze>Increase the gain: longer devices.</Analyze>\n<tool_call>"
            + json.dumps({"name": "simulate", "arguments": args})
            + "</tool_call>"
        )
    texts.append("<Analyze>Every spec is met.</Analyze>\n<Design End>")
    return texts * 4


def build_tokenizer(out: Path, vocab_size: int = 2048):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_corpus(), trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    wrapped.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(out)
    return wrapped


TINY_VOCAB = 2048  # the tokenizer trainer's cap; the trained tokenizer holds at most this many (1,535 today)


def tiny_config(vocab_size: int, hidden: int = 128, layers: int = 2, eos: int | None = None, pad: int | None = None):
    """The tiny model's Qwen3 architecture (also what `tlgrpo plan` counts)."""
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        eos_token_id=eos,
        pad_token_id=pad,
        bos_token_id=None,
    )


def build_tiny_model(out: Path | str, hidden: int = 128, layers: int = 2, seed: int = 0) -> Path:
    """Write a tokenizer and a randomly initialised Qwen3-architecture model to `out`."""
    import torch
    from transformers import AutoModelForCausalLM

    out = Path(out)
    tokenizer = build_tokenizer(out, TINY_VOCAB)
    config = tiny_config(len(tokenizer), hidden, layers, tokenizer.eos_token_id, tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    return out
