"""Write a tiny, real Hugging Face checkpoint that vLLM loads: Qwen2 architecture, random weights.

Used by the sandbox and the tests (no model hub is reachable from these machines). The
tokenizer is a byte-level BPE trained here on generated text, with ChatML special tokens and
a chat template, so /v1/chat/completions works. Everything is seeded: the same command writes
the same files. Output is random tokens: tests assert shapes and status codes, never text.

Usage: python make_tiny_model.py OUTPUT_DIR
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261121
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
WORDS = (
    "the model serves tokens across nodes ray cluster vllm endpoint ready health weights "
    "accelerator driver kernel memory tensor pipeline parallel request answer question user "
    "assistant system hello world inference batch cache latency throughput"
).split()


def training_text(lines=4000):
    rng = random.Random(SEED)
    for _line in range(lines):
        yield " ".join(rng.choice(WORDS) for _word in range(rng.randint(4, 16))) + "."


def write_tokenizer(output):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_text(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=512,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(output)
    return wrapped


def write_model(output, tokenizer):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        # Head size 64: vLLM's CPU attention supports 32, 64, 80, ... (16 fails).
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        torch_dtype="bfloat16",
    )
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(output, safe_serialization=True)
    generation = {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id, "max_new_tokens": 32}
    (Path(output) / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")


def main():
    output = Path(sys.argv[1])
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tokenizer(output)
    write_model(output, tokenizer)
    total = sum(path.stat().st_size for path in output.iterdir())
    print("tiny model written to %s: %d files, %d bytes" % (output, len(list(output.iterdir())), total))


if __name__ == "__main__":
    main()
