"""Token-level information flux (InfoSteer Sec. 6.2, Table 5): the key entropy of every response token.

For a fixed, seeded sample of prompts, the model greedily generates a response (up to its first
EOS); hooks read, at every response token's own position (where it is the input) and in every
layer, the entropy of the normalised FFN key distribution (infoflow.infosteer.steer.key_entropy, the
regulariser's normalisation). The flux of a token is the mean of that entropy over layers.

Each token gets a class (infoflow.world.token_classes): punctuation, function word, number, copied from
the prompt, or content.

Parquet schema (one row per response token; `parquet.writer` streams it batch by batch):
  run, task, method str; seed int64; prompt_id str; position int64 (0 = first response token);
  token_id int64; text str; copied bool; token_class str; flux float32;
  entropy fixed_size_list<float32>[layers]  per-layer entropy (nats).
"""

import argparse
import logging

import pyarrow as pa
import torch

from infoflow import cli, parquet
from infoflow.training import models
from infoflow.training.generation import generate_ids
from infoflow.io import read_examples
from infoflow.sampling import sample
from infoflow.training.layers import memory_modules
from infoflow.infosteer.steer import NORMALIZATIONS, from_folder, key_entropy
from infoflow.world.token_classes import token_class

log = logging.getLogger("infoflow.infosteer.flux")


def schema(layers):
    return pa.schema([
        ("run", pa.string()), ("task", pa.string()), ("method", pa.string()), ("seed", pa.int64()),
        ("prompt_id", pa.string()), ("position", pa.int64()), ("token_id", pa.int64()), ("text", pa.string()),
        ("copied", pa.bool_()), ("token_class", pa.string()), ("flux", pa.float32()),
        ("entropy", pa.list_(pa.float32(), layers)),
    ])


@torch.no_grad()
def generate_with_entropies(model, tokenizer, prompts, max_new_tokens, normalization):
    """(responses, entropies): greedy responses (token ids, cut before EOS) of a batch of prompts, and
    [batch, max_new_tokens, layers] key entropies where entropies[i, t] belongs to response token t.

    Read by hooks while generating, so no second forward pass: with the KV cache, decoding step k
    feeds generated token k - 1, so token t's keys appear at step t + 1. One step more than the
    response needs gives the last token's keys; the response itself keeps `max_new_tokens` tokens.
    """
    steps = []  # per forward call, [batch, layers] entropies at its last input position

    def record(layer, keys):
        if layer == 0:
            steps.append([])
        steps[-1].append(key_entropy(keys[:, -1], normalization))

    handles = [m.register_forward_pre_hook(lambda m, args, i=i: record(i, args[0])) for i, m in enumerate(memory_modules(model))]
    try:
        responses = generate_ids(model, tokenizer, prompts, max_new_tokens + 1, len(prompts))
    finally:
        for handle in handles:
            handle.remove()
    if len(steps) == 1:  # every response was empty (EOS first): only the prompt's forward pass ran
        return responses, torch.zeros(len(prompts), 0, len(handles))
    entropies = torch.stack([torch.stack(layers, dim=-1) for layers in steps[1:]], dim=1).float()  # step 0: the prompt
    return [r[:max_new_tokens] for r in responses], entropies


def response_rows(tokenizer, prompts, responses, entropies):
    """The Parquet columns (without run tags) of one batch of prompts and their generated responses."""
    columns = {name: [] for name in ("prompt_id", "position", "token_id", "text", "copied", "token_class")}
    rows, positions = [], []
    for row, (prompt, response) in enumerate(zip(prompts, responses)):
        prompt_ids = set(tokenizer(prompt["prompt"]).input_ids)
        for position, token in enumerate(response):
            text = tokenizer.decode([token])
            copied = token in prompt_ids
            columns["prompt_id"].append(prompt["id"])
            columns["position"].append(position)
            columns["token_id"].append(token)
            columns["text"].append(text)
            columns["copied"].append(copied)
            columns["token_class"].append(token_class(text, copied))
            rows.append(row)
            positions.append(position)
    columns["entropy"] = entropies[rows, positions].cpu().numpy().reshape(len(rows), entropies.shape[-1])
    columns["flux"] = columns["entropy"].mean(axis=1)
    return columns


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
    models.add_arguments(parser)
    parser.add_argument("--out", required=True, help="Parquet file")
    args = parser.parse_args()
    cli.setup(args.threads)

    prompts = sample(read_examples(args.prompts), args.sample, args.sample_seed, args.prompts, "the flux sample")
    model, tokenizer = models.load(args.model, **models.options(args))
    tags = {"run": f"{args.task}/{args.method}/seed{args.seed}", "task": args.task, "method": args.method, "seed": args.seed}
    # Decoding as evaluation does: an intervention trained with at_eval stays on, and the entropies are
    # those of the keys the memory matrix then receives (its hooks run before the flux hooks).
    with from_folder(model, args.model), parquet.writer(args.out, schema(len(memory_modules(model)))) as write:
        for batch in cli.batches(prompts, args.batch_size, log):
            responses, entropies = generate_with_entropies(model, tokenizer, [p["prompt"] for p in batch], args.max_new_tokens, args.normalization)
            columns = response_rows(tokenizer, batch, responses, entropies)
            write({**tags, **columns})


if __name__ == "__main__":
    cli.run(main)
