"""Extract InfoRidge's activations of one run's checkpoints to Parquet (schema: infoflow.inforidge.activations).

For a fixed, seeded sample of each split's examples, one right-padded forward pass per batch with
`output_hidden_states=True` gives the state at the last prompt position after the embedding layer
and after every block. Hugging Face returns the last block's output after the final norm, so a
hook on the last block also reads it before the norm; `--last-layer` chooses which of the two
(or both) are written, their vectors stored as `--vector-dtype` (activations.DTYPES). Batches are
written as they are computed: memory does not grow with the number of examples.

States are those of the trained weights as saved: no steering hooks are installed, also for a run
trained with an InfoSteer method (whose record in the checkpoint, models.METHOD_FILE, is logged).
"""

import argparse
import json
import logging
import os

import numpy as np
import torch

from infoflow import cli
from infoflow.inforidge import activations
from infoflow.training import models
from infoflow.io import DataError, read_examples
from infoflow.sampling import sample
from infoflow.training.layers import decoder_layers, final_norm

LAST_LAYER = ("raw", "normed", "both")
log = logging.getLogger("infoflow.inforidge.extract")


def encode_batch(tokenizer, examples, device):
    """Right-padded prompt ids, attention mask, prompt lengths and target (first answer) token ids.

    Tokenised as sft_data.encode does (the answer after a space, no special tokens), in two batched
    tokenizer calls rather than two per example.
    """
    prompts = tokenizer([e["prompt"] for e in examples]).input_ids
    answers = tokenizer([" " + e["answer"] for e in examples], add_special_tokens=False).input_ids
    lengths = [len(p) for p in prompts]
    width = max(lengths)
    ids = [p + [tokenizer.pad_token_id] * (width - len(p)) for p in prompts]
    mask = [[1] * n + [0] * (width - n) for n in lengths]
    as_tensor = lambda rows: torch.tensor(rows, device=device)  # noqa: E731
    return as_tensor(ids), as_tensor(mask), as_tensor(lengths), as_tensor([a[0] for a in answers])


@torch.no_grad()
def last_position_states(model, ids, mask, lengths):
    """[batch, L + 2, d] states at the last prompt position: layers 0..L raw, then layer L normed."""
    return position_states(model, ids, mask, (lengths - 1)[:, None])[:, 0]


@torch.no_grad()
def position_states(model, ids, mask, positions):
    """[batch, positions, L + 2, d] states at the positions [batch, K] of each row: layers 0..L raw,
    then layer L normed."""
    captured = {}

    def keep_raw(module, args, output):
        captured["raw"] = output[0] if isinstance(output, tuple) else output

    handle = decoder_layers(model)[-1].register_forward_hook(keep_raw)
    try:
        hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    finally:
        handle.remove()
    states = [*hidden[:-1], captured["raw"], hidden[-1]]
    rows = torch.arange(ids.shape[0], device=ids.device)[:, None]
    return torch.stack([s[rows, positions] for s in states], dim=2).float()


def layer_rows(n_layers, last_layer):
    """(indices into the L + 2 state rows of position_states, their layer numbers, their final_norm
    flags) that `last_layer` (LAST_LAYER) keeps."""
    # Row n_layers + 1 of the states is layer n_layers read after the final norm.
    layer_of = [*range(n_layers + 1), n_layers]
    keep = {"raw": [*range(n_layers + 1)], "normed": [*range(n_layers), n_layers + 1], "both": [*range(n_layers + 2)]}[last_layer]
    return keep, [layer_of[i] for i in keep], [i == n_layers + 1 for i in keep]


def target_embeddings(model, tokens):
    """The targets Y: the input-embedding rows of the token ids `tokens` (float32; the estimator normalises them)."""
    return model.get_input_embeddings().weight[tokens].float()


@torch.no_grad()
def batch_columns(model, tokenizer, examples, last_layer):
    """The Parquet columns (without run tags) of one batch of examples."""
    ids, mask, lengths, targets = encode_batch(tokenizer, examples, model.device)
    states = last_position_states(model, ids, mask, lengths)
    raw, normed = states[:, :-1], states[:, -1:]
    n_layers = raw.shape[1] - 1
    residual = torch.cat([raw[:, :1], raw[:, 1:] - raw[:, :-1], normed - raw[:, -2:-1]], dim=1)
    head = model.get_output_embeddings()
    exit_tokens = torch.cat([head(final_norm(model)(raw)).argmax(-1), head(normed).argmax(-1)], dim=1)
    keep, layers, final_norms = layer_rows(n_layers, last_layer)
    count, per = len(examples), len(keep)
    target = target_embeddings(model, targets)
    return {
        "example_id": np.repeat([e["id"] for e in examples], per),
        "split": np.repeat([e["split"] for e in examples], per),
        "layer": np.tile(layers, count),
        "final_norm": np.tile(final_norms, count),
        "hidden": states[:, keep].reshape(count * per, -1).cpu().numpy(),
        "residual": residual[:, keep].reshape(count * per, -1).cpu().numpy(),
        "target": target.repeat_interleave(per, dim=0).cpu().numpy(),
        "target_token": targets.repeat_interleave(per).cpu().numpy(),
        "early_exit_token": exit_tokens[:, keep].reshape(-1).cpu().numpy(),
    }


def extract(model, tokenizer, examples, out, tags, batch_size, last_layer, vector_dtype="float32"):
    """Write the activations of `examples` under `model` to the Parquet file `out`, batch by batch,
    with vectors stored as `vector_dtype`.

    `tags` holds the run's columns (task, method, seed, point, step).
    """
    run = {**tags, "run": f"{tags['task']}/{tags['method']}/seed{tags['seed']}"}
    with activations.writer(out, model.config.hidden_size, vector_dtype) as write:
        for batch in cli.batches(examples, batch_size, log):
            write({**run, **batch_columns(model, tokenizer, batch, last_layer)})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", nargs="+", required=True, help="model folders with checkpoint.json")
    parser.add_argument("--out", nargs="+", required=True, help="one Parquet file per checkpoint")
    parser.add_argument("--examples", nargs="+", required=True, help="example files (one per split)")
    parser.add_argument("--sample", type=int, required=True, help="examples drawn from each file")
    parser.add_argument("--sample-seed", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--last-layer", choices=LAST_LAYER, required=True,
                        help="last layer before the final norm (raw), after it (normed), or both rows")
    parser.add_argument("--vector-dtype", choices=activations.DTYPES, default="float32",
                        help="storage type of the vectors in the Parquet files (read back as float32)")
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True, help="the run's training seed (a tag)")
    parser.add_argument("--threads", type=int, required=True)
    models.add_arguments(parser)
    args = parser.parse_args()
    cli.setup(args.threads)
    if len(args.checkpoints) != len(args.out):
        parser.error("--checkpoints and --out need one entry per checkpoint")

    examples = [e for path in args.examples for e in sample(read_examples(path), args.sample, args.sample_seed, path)]
    tags = {"task": args.task, "method": args.method, "seed": args.seed}
    for model_dir, out in zip(args.checkpoints, args.out):
        model, tokenizer = models.load(model_dir, **models.options(args))
        log.info("%s: trained with %s; states of its weights, unsteered", model_dir, models.read_method(model_dir))
        with open(os.path.join(model_dir, "checkpoint.json")) as f:
            checkpoint = json.load(f)  # point and step
        extract(model, tokenizer, examples, out, {**tags, **checkpoint}, args.batch_size, args.last_layer, args.vector_dtype)
        print(json.dumps({"checkpoint": model_dir, "examples": len(examples), "out": out}))


if __name__ == "__main__":
    cli.run(main)
