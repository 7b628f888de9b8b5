"""Pretrain the embedded world's base model from scratch on the corpus, with the Hugging Face Trainer.

The architecture is any `transformers` decoder type (default Qwen2) built from a config, so every
later stage loads it with `AutoModelForCausalLM.from_pretrained`, like a real checkpoint.
"""

import argparse
import logging
import os
import shutil

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, set_seed

from infoflow import cli
from infoflow.training import models, trainer
from infoflow.io import write_json

log = logging.getLogger("infoflow.training.pretrain")


def build_model(tokenizer, architecture, hidden_size, intermediate_size, layers, heads, max_length):
    config = AutoConfig.for_model(
        architecture,
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return AutoModelForCausalLM.from_config(config)


def pack(tokenizer, lines, block_size):
    """Concatenate the documents, each ended by EOS, and cut the stream into full blocks."""
    ids = []
    for line in lines:
        ids.extend(tokenizer(line.strip()).input_ids + [tokenizer.eos_token_id])
    n_blocks = len(ids) // block_size
    blocks = torch.tensor(ids[: n_blocks * block_size]).view(n_blocks, block_size)
    return [{"input_ids": b, "labels": b} for b in blocks]


def read_lines(paths):
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            lines.extend(line for line in f if line.strip())
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--corpus", nargs="+", required=True)
    parser.add_argument("--architecture", required=True, help="a transformers model_type, e.g. qwen2 or llama")
    parser.add_argument("--hidden-size", type=int, required=True)
    parser.add_argument("--intermediate-size", type=int, required=True)
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--heads", type=int, required=True)
    parser.add_argument("--block-size", type=int, required=True)
    trainer.add_arguments(parser)
    args = parser.parse_args()
    cli.setup(args.threads)

    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    blocks = pack(tokenizer, read_lines(args.corpus), args.block_size)
    model = build_model(
        tokenizer, args.architecture, args.hidden_size, args.intermediate_size, args.layers, args.heads, args.block_size
    ).to(models.training_dtype(args.precision))
    log.info("%d blocks of %d tokens; %.2fM parameters", len(blocks), args.block_size, model.num_parameters() / 1e6)
    inputs = [*args.corpus, os.path.join(args.tokenizer, "tokenizer.json")]
    history = trainer.train(model, blocks, args, scheduler="cosine", run_label="pretraining", logging_steps=20, inputs=inputs)
    models.save(model, tokenizer, args.out)
    write_json(args.history, history)
    if trainer.resumable(args):
        shutil.rmtree(args.resume_dir)


if __name__ == "__main__":
    cli.run(main)
