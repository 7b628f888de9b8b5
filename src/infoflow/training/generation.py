"""Greedy decoding of a batch of prompts, shared by evaluation and the token-flux stage."""

import logging

import torch

from infoflow import cli

log = logging.getLogger("infoflow.training.generation")


@torch.no_grad()
def generate_ids(model, tokenizer, prompts, max_new_tokens, batch_size):
    """Greedy continuations of `prompts` as token-id lists, each cut before its first EOS."""
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    responses = []
    for batch_prompts in cli.batches(prompts, batch_size, log):
        batch = tokenizer(batch_prompts, return_tensors="pt", padding=True).to(model.device)
        generated = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        for row in generated[:, batch["input_ids"].shape[1] :].tolist():
            responses.append(row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row)
    return responses


def greedy_generate(model, tokenizer, prompts, max_new_tokens, batch_size):
    """Greedy continuations of `prompts` (text after the prompt, special tokens dropped)."""
    ids = generate_ids(model, tokenizer, prompts, max_new_tokens, batch_size)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)
