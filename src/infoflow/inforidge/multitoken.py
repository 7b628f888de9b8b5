"""InfoRidge's multi-token decoding information (Sec. 5) of a base model, to CSV.

For a seeded sample of prompts (by default the knowledge world's biography openings, config
multitoken.prompts), the base model (not fine-tuned) greedily continues each for up to T steps
(infoflow.training.generation). One right-padded forward pass of prompt + continuation then reads, at
the position that predicts generated token t (the one before it), the state after the embedding layer
and after every block (infoflow.inforidge.extract.position_states; the last block before and / or
after the final norm, --last-layer as in extraction), and the target Y_t: the input embedding of token
t (extract.target_embeddings).

Per sampling seed (N of the prompts), step t and layer row: I(Z; Y) under the sequence kernel
(infoflow.inforidge.mi.sequence_mutual_information). With `--sets prefix` (our reading of the paper's
"token sets up to step t", the default) the sets are a prompt's states and targets of steps 1..t:
I(Z_{<=t}; Y_{<=t}); with `step` they are step t's token alone. A continuation that stops early (EOS)
keeps its shorter sets: its prefix sets stop growing at its end, and it leaves the step-set estimates
after it (the `examples` column counts the prompts each estimate kept); one that stops at once has no
tokens and is in no estimate.

CSV columns: task, sets, step (1..T), layer (0 = embeddings), final_norm, sample_seed, examples, mi (nats).
"""

import argparse
import logging

import numpy as np
import polars as pl
import torch

from infoflow import cli
from infoflow.inforidge import mi
from infoflow.inforidge.extract import LAST_LAYER, layer_rows, position_states, target_embeddings
from infoflow.io import DataError, read_examples, write_csv
from infoflow.sampling import sample
from infoflow.training import models
from infoflow.training.generation import generate_ids
from infoflow.training.layers import decoder_layers

log = logging.getLogger("infoflow.inforidge.multitoken")


@torch.no_grad()
def continuation_states(model, tokenizer, prompts, steps, batch_size, last_layer):
    """Greedy continuations of `prompts` (up to `steps` tokens each) and what they give the estimator:
    {tokens [N, T] (padded past the end), states [N, T, layer rows, d], targets [N, T, d], mask [N, T]
    (which tokens exist), layer, final_norm (per layer row)}, all on the CPU; states[i, t] is read at
    the position that predicts token t."""
    continuations = generate_ids(model, tokenizer, prompts, steps, batch_size)
    keep, layers, final_norms = layer_rows(len(decoder_layers(model)), last_layer)
    states, targets, masks, generated = [], [], [], []
    for batch in cli.batches(list(zip(prompts, continuations)), batch_size, log):
        prompt_ids = tokenizer([prompt for prompt, _ in batch]).input_ids
        rows = [p + c for p, (_, c) in zip(prompt_ids, batch)]
        width = max(map(len, rows))
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows], device=model.device)
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=model.device)
        # Token t (0-based) of a continuation is predicted at position len(prompt) - 1 + t; past its end
        # (masked) the last position stands in.
        t = torch.arange(steps)
        positions = torch.stack([(len(p) - 1 + t).clamp(max=width - 1) for p in prompt_ids]).to(model.device)
        mask = torch.stack([t < len(c) for _, c in batch])
        tokens = torch.tensor([c + [tokenizer.pad_token_id] * (steps - len(c)) for _, c in batch], device=model.device)
        states.append(position_states(model, ids, attention, positions)[:, :, keep].cpu())
        targets.append(target_embeddings(model, tokens).cpu())
        masks.append(mask)
        generated.append(tokens.cpu())
    mask = torch.cat(masks)
    lengths = mask.sum(1).float()
    log.info("continuations: %.1f tokens on average, %d of %d stopped before %d", lengths.mean(), int((lengths < steps).sum()), len(lengths), steps)
    return {"tokens": torch.cat(generated), "states": torch.cat(states), "targets": torch.cat(targets), "mask": mask, "layer": layers, "final_norm": final_norms}


def information(decoded, examples, sample_seeds, sets, kernel, sigma, alpha):
    """Long table of I(Z; Y) per step, layer row and sampling seed (each seed draws `examples` prompts)."""
    available = len(decoded["mask"])
    if examples > available:
        raise DataError(f"multitoken.mi_examples: N = {examples} prompts requested for the MI estimate, {available} were continued")
    samples = [np.random.default_rng(seed).choice(available, examples, replace=False) for seed in range(sample_seeds)]
    values, kept = mi.sequence_mutual_information(decoded["states"].permute(2, 0, 1, 3), decoded["targets"], decoded["mask"], samples,
                                                  sets=sets, kernel=kernel, sigma=sigma, alpha=alpha)
    index = np.indices(values.shape).reshape(3, -1)  # sample seed, step, layer row of each value
    return pl.DataFrame({
        "sets": [sets] * values.size,
        "step": index[1] + 1,
        "layer": np.asarray(decoded["layer"])[index[2]],
        "final_norm": np.asarray(decoded["final_norm"])[index[2]],
        "sample_seed": index[0],
        "examples": kept[index[0], index[1]],
        "mi": values.reshape(-1),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the base model: a folder or hub id")
    parser.add_argument("--prompts", required=True, help="JSON-lines examples whose prompts are continued")
    parser.add_argument("--examples", type=int, required=True, help="prompts continued (a seeded sample of the file)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the prompt sample")
    parser.add_argument("--steps", type=int, required=True, help="T: decoding steps (tokens generated at most)")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--last-layer", choices=LAST_LAYER, required=True,
                        help="last layer before the final norm (raw), after it (normed), or both rows")
    parser.add_argument("--mi-examples", type=int, required=True, help="N prompts per MI estimate")
    parser.add_argument("--sample-seeds", type=int, required=True)
    parser.add_argument("--sets", choices=mi.SETS, required=True, help="prefix: the tokens up to step t; step: token t alone")
    parser.add_argument("--kernel", choices=mi.KERNELS, required=True)
    parser.add_argument("--sigma", type=float, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--task", required=True, help="the task whose base model this is (a tag)")
    parser.add_argument("--threads", type=int, required=True)
    models.add_arguments(parser)
    parser.add_argument("--out", required=True, help="CSV file")
    args = parser.parse_args()
    cli.setup(args.threads)

    prompts = sample(read_examples(args.prompts), args.examples, args.seed, args.prompts, "the multi-token sample")
    model, tokenizer = models.load(args.model, **models.options(args))
    decoded = continuation_states(model, tokenizer, [p["prompt"] for p in prompts], args.steps, args.batch_size, args.last_layer)
    table = information(decoded, args.mi_examples, args.sample_seeds, args.sets, args.kernel, args.sigma, args.alpha)
    write_csv(args.out, table.select(pl.lit(args.task).alias("task"), pl.all()))


if __name__ == "__main__":
    cli.run(main)
