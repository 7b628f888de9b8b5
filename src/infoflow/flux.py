"""Token-level information flux (InfoSteer Sec. 6.2, Table 5): the key entropy of every response token.

For a fixed, seeded sample of prompts, the model greedily generates a response (up to its first
EOS); one forward pass over prompt + response then reads, at every response token's own position
and in every layer, the entropy of the normalised FFN key distribution (infoflow.steer.key_entropy,
the regulariser's normalisation). The flux of a token is the mean of that entropy over layers.

Each token gets a class (infoflow.token_classes): punctuation, function word, number, copied from
the prompt, or content.

Parquet schema (one row per response token; `parquet.writer` streams it batch by batch):
  run, task, method str; seed int64; prompt_id str; position int64 (0 = first response token);
  token_id int64; text str; copied bool; token_class str; flux float32;
  entropy fixed_size_list<float32>[layers]  per-layer entropy (nats).
"""

import argparse

import numpy as np
import pyarrow as pa
import torch

from infoflow import cli, models, parquet
from infoflow.evaluate import generate_ids
from infoflow.io import DataError, read_examples
from infoflow.keys import memory_modules
from infoflow.steer import NORMALIZATIONS, key_entropy
from infoflow.token_classes import token_class

def schema(layers):
    return pa.schema([
        ("run", pa.string()), ("task", pa.string()), ("method", pa.string()), ("seed", pa.int64()),
        ("prompt_id", pa.string()), ("position", pa.int64()), ("token_id", pa.int64()), ("text", pa.string()),
        ("copied", pa.bool_()), ("token_class", pa.string()), ("flux", pa.float32()),
        ("entropy", pa.list_(pa.float32(), layers)),
    ])


@torch.no_grad()
def key_entropies(model, sequences, normalization, pad_token_id):
    """[batch, tokens, layers] key entropy at every position of right-padded `sequences` (lists of ids)."""
    width = max(map(len, sequences))
    ids = torch.tensor([s + [pad_token_id] * (width - len(s)) for s in sequences], device=model.device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=model.device)
    entropies = []
    handles = [m.register_forward_pre_hook(lambda m, args: entropies.append(key_entropy(args[0], normalization)))
               for m in memory_modules(model)]
    try:
        model(input_ids=ids, attention_mask=mask)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(entropies, dim=-1).float()


def response_rows(model, tokenizer, prompts, responses, normalization):
    """The Parquet columns (without run tags) of one batch of prompts and their generated responses."""
    prompt_ids = [tokenizer(p["prompt"]).input_ids for p in prompts]
    entropy = key_entropies(model, [p + r for p, r in zip(prompt_ids, responses)], normalization, tokenizer.pad_token_id)
    columns = {name: [] for name in ("prompt_id", "position", "token_id", "text", "copied", "token_class", "entropy")}
    for row, (prompt, ids, response) in enumerate(zip(prompts, prompt_ids, responses)):
        for position, token in enumerate(response):
            text = tokenizer.decode([token])
            copied = token in ids
            columns["prompt_id"].append(prompt["id"])
            columns["position"].append(position)
            columns["token_id"].append(token)
            columns["text"].append(text)
            columns["copied"].append(copied)
            columns["token_class"].append(token_class(text, copied))
            columns["entropy"].append(entropy[row, len(ids) + position].cpu().numpy())
    layers = entropy.shape[-1]
    columns["entropy"] = np.array(columns["entropy"], dtype=np.float32).reshape(-1, layers)
    columns["flux"] = columns["entropy"].mean(axis=1)
    return columns


def sample(examples, n, seed, path):
    if n > len(examples):
        raise DataError(f"{path}: {n} prompts requested for the flux sample, {len(examples)} exist")
    index = np.random.default_rng(seed).choice(len(examples), n, replace=False)
    return [examples[i] for i in sorted(index)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", required=True, help="JSON-lines examples whose prompts are used")
    parser.add_argument("--sample", type=int, required=True)
    parser.add_argument("--sample-seed", type=int, required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--normalization", choices=NORMALIZATIONS, required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True, help="the run's training seed (a tag)")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--out", required=True, help="Parquet file")
    args = parser.parse_args()
    cli.setup(args.threads)

    prompts = sample(read_examples(args.prompts), args.sample, args.sample_seed, args.prompts)
    model, tokenizer = models.load(args.model)
    tags = {"run": f"{args.task}/{args.method}/seed{args.seed}", "task": args.task, "method": args.method, "seed": args.seed}
    with parquet.writer(args.out, schema(len(memory_modules(model)))) as write:
        for start in range(0, len(prompts), args.batch_size):
            batch = prompts[start : start + args.batch_size]
            responses = generate_ids(model, tokenizer, [p["prompt"] for p in batch], args.max_new_tokens, args.batch_size)
            columns = response_rows(model, tokenizer, batch, responses, args.normalization)
            write({**{k: [v] * len(columns["flux"]) for k, v in tags.items()}, **columns})


if __name__ == "__main__":
    cli.run(main)
