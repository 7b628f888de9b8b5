"""Residual scaling coefficients (InfoRidge): how much each decoder block's update is worth on ID vs OOD data.

With every model weight frozen, each decoder block l gets one trainable scalar beta_l >= 0 (init 1)
that scales its whole residual update: z_l = z_{l-1} + beta_l * (block_l(z_{l-1}) - z_{l-1}).
The betas are fitted with the project's Trainer on the answer tokens of ID or of OOD examples; the
command fits both, on several seeded halves, and reports the betas per layer and the change in
answer accuracy on the held-out halves.
"""

import argparse
import math
import random

import polars as pl
import torch
import torch.nn.functional as F

from infoflow import cli
from infoflow.training import models, trainer
from infoflow.training.sft_data import IGNORE_INDEX, PadCollator, encode
from infoflow.io import DataError, read_examples, write_csv, write_json
from infoflow.training.layers import decoder_layers

SPLITS = ("id", "ood")
RAW_AT_ONE = math.log(math.e - 1)  # softplus(RAW_AT_ONE) is exactly 1.0 in float32 (checked in the tests)


class ResidualScaling(torch.nn.Module):
    """One beta per decoder block, kept >= 0 as softplus(raw)."""

    def __init__(self, n_layers):
        super().__init__()
        self.raw = torch.nn.Parameter(torch.full((n_layers,), RAW_AT_ONE))
        self.handles = []

    def betas(self):
        return F.softplus(self.raw)


def scale_hook(scaling, index):
    """A forward hook rescaling layer `index`'s update of the hidden states (the output's first item if a tuple).

    Written as out + (beta - 1) * (out - in) rather than in + beta * (out - in): when beta is
    exactly 1 the added term is exactly 0, so the model's output is unchanged bit for bit.
    """

    def hook(layer, args, kwargs, output):
        before = args[0] if args else kwargs["hidden_states"]
        after = output[0] if isinstance(output, tuple) else output
        scaled = after + (scaling.betas()[index] - 1) * (after - before)
        return (scaled, *output[1:]) if isinstance(output, tuple) else scaled

    return hook


def attach(model):
    """Freeze `model` and scale its blocks by a new ResidualScaling, registered as `model.residual_scaling`.

    As a submodule it is the only trainable part the Trainer sees. The hooks go first on each layer
    so that Hugging Face's own output capturing (output_hidden_states) records the scaled states.
    """
    layers = decoder_layers(model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    device = next(model.parameters()).device
    scaling = ResidualScaling(len(layers)).to(device)
    model.residual_scaling = scaling
    scaling.handles = [
        layer.register_forward_hook(scale_hook(scaling, i), with_kwargs=True, prepend=True) for i, layer in enumerate(layers)
    ]
    return scaling


def detach(model):
    """Remove the hooks and the submodule that `attach` added (the weights stay frozen)."""
    for handle in model.residual_scaling.handles:
        handle.remove()
    del model.residual_scaling


@torch.no_grad()
def answer_accuracy(model, tokenizer, examples, batch_size):
    """Share of examples whose first answer token is the argmax of the next-token logits after the prompt.

    Teacher-forced on the encoded prompt + answer: causal attention and right padding leave the
    logits at the last prompt position those of the prompt alone.
    """
    collate = PadCollator(tokenizer.pad_token_id)
    hits = 0
    for start in range(0, len(examples), batch_size):
        batch = collate([encode(tokenizer, e["prompt"], e["answer"]) for e in examples[start : start + batch_size]])
        labels = batch.pop("labels").to(model.device)
        first = (labels != IGNORE_INDEX).int().argmax(-1)  # position of each row's first answer token
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits
        rows = torch.arange(len(labels), device=model.device)
        hits += int((logits[rows, first - 1].argmax(-1) == labels[rows, first]).sum())
    return hits / len(examples)


def fit(model, tokenizer, examples, args):
    """Attach a fresh ResidualScaling, fit it on the examples' answer tokens; return the betas.

    The scaling stays attached, so the model can be evaluated with it; `detach` removes it.
    `args` holds the Trainer settings of infoflow.training.trainer.train.
    """
    scaling = attach(model)
    train_set = [encode(tokenizer, e["prompt"], e["answer"]) for e in examples]
    trainer.train(model, train_set, args, scheduler="linear", run_label="residual scaling fit",
                   collator=PadCollator(tokenizer.pad_token_id))
    return scaling.betas().tolist()


def split_halves(examples, fraction, seed, path):
    """(fit, held-out) examples from a seeded permutation; `fraction` of them go to the fit half."""
    n_fit = round(fraction * len(examples))
    if not 0 < n_fit < len(examples):
        raise DataError(f"{path}: {len(examples)} examples leave an empty half at fit fraction {fraction}")
    shuffled = random.Random(seed).sample(examples, len(examples))
    return shuffled[:n_fit], shuffled[n_fit:]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="fine-tuned model folder")
    parser.add_argument("--id", required=True, help="in-distribution examples (JSON lines)")
    parser.add_argument("--ood", required=True, help="out-of-distribution examples (JSON lines)")
    parser.add_argument("--seeds", type=int, required=True, help="fit seeds 0..N-1 (split and Trainer seed)")
    parser.add_argument("--fit-fraction", type=float, required=True, help="share of each file the betas are fitted on")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--epochs", type=float, required=True)
    parser.add_argument("--threads", type=int, required=True)
    models.add_arguments(parser)
    trainer.add_report_argument(parser)
    parser.add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE", help="labels stored with the results")
    parser.add_argument("--out", required=True, help="CSV of the betas: one row per seed, fit split and layer")
    parser.add_argument("--summary", required=True, help="JSON of the held-out accuracies before and after")
    args = parser.parse_args()
    cli.setup(args.threads)

    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    paths = {"id": args.id, "ood": args.ood}
    example_sets = {split: read_examples(path) for split, path in paths.items()}
    # Per fit seed and split, (fit, held-out) halves: bad or unsplittable files fail before the model loads.
    halves = [{s: split_halves(example_sets[s], args.fit_fraction, seed, paths[s]) for s in SPLITS} for seed in range(args.seeds)]
    tags = cli.parse_tags(args.tags)
    model, tokenizer = models.load(args.model, **models.options(args))
    rows, fits = [], []
    for seed, seed_halves in enumerate(halves):
        heldout = {s: seed_halves[s][1] for s in SPLITS}
        before = {s: answer_accuracy(model, tokenizer, heldout[s], args.batch_size) for s in SPLITS}
        # No warmup; no weight decay, which would pull raw towards 0 (beta = log 2) rather than beta towards 1.
        trainer_args = argparse.Namespace(batch_size=args.batch_size, learning_rate=args.learning_rate,
                                          epochs=args.epochs, warmup_steps=0, weight_decay=0.0, seed=seed,
                                          gradient_accumulation_steps=1, gradient_checkpointing=False,
                                          report_to=args.report_to)
        for fit_split in SPLITS:
            betas = fit(model, tokenizer, seed_halves[fit_split][0], trainer_args)
            after = {s: answer_accuracy(model, tokenizer, heldout[s], args.batch_size) for s in SPLITS}
            detach(model)
            rows += [{"seed": seed, "fit_split": fit_split, "layer": layer, "beta": beta} for layer, beta in enumerate(betas, 1)]
            fits.append({"seed": seed, "fit_split": fit_split, "betas": betas, "n_fit": len(seed_halves[fit_split][0]),
                         "n_heldout": {s: len(heldout[s]) for s in SPLITS},
                         "accuracy_before": before, "accuracy_after": after})
    # The run's own seed tag becomes run_seed: `seed` is the fit seed here.
    tag_columns = {("run_seed" if key == "seed" else key): value for key, value in tags.items()}
    write_csv(args.out, pl.DataFrame(rows).with_columns(**{key: pl.lit(value) for key, value in tag_columns.items()}))
    write_json(args.summary, {"tags": tags, "fits": fits})


if __name__ == "__main__":
    cli.run(main)
