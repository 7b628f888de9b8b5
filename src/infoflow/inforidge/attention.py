"""Attention to signal tokens per layer (InfoRidge Table 2) of one post-trained model, to CSV.

For a fixed, seeded sample of each test split's examples, prompts are tokenised as training and
evaluation tokenise them (the prompt alone, with the tokenizer's special tokens: sft_data.encode,
evaluate's zero-shot prompts), and one padded forward pass per batch with eager attention (fused
kernels return no weights) gives every layer's attention weights. From the prediction position (the
last prompt position, whose output predicts the answer) the weights, averaged over heads, are summed
over four kinds of key position:
  signal  the modular task's S<k> tokens (infoflow.world.modular_tokens),
  noise   its N<k> tokens,
  last    the prediction position itself (on the modular task always a noise token, counted here only),
  rest    everything else: BOS and format tokens, words that are neither (none on the world's prompts).
A token's kind is that of the prompt word its characters lie in (tokenizer offsets), so a tokenizer that
splits S12 into pieces gives every piece the kind signal. Padding (left or right) is masked and has
its own position ids, so it gets no mass and a padded prompt's masses equal its unpadded ones: the
four masses sum to 1.

The weights are those of the trained model as saved: no steering hooks are installed, also for a run
trained with an InfoSteer method (whose record, models.METHOD_FILE, is logged), as in extraction.

CSV: one row per (task, method, seed, split, example_id, layer), layer 1..L being the attention of block
l, whose output is layer l of the information curves (infoflow.inforidge.extract); columns signal,
noise, last, rest.
"""

import argparse
import logging
import re

import numpy as np
import polars as pl
import torch

from infoflow import cli
from infoflow.io import read_examples, write_csv
from infoflow.sampling import sample
from infoflow.training import models
from infoflow.world.modular_tokens import MASS_KINDS as KINDS, word_kind

log = logging.getLogger("infoflow.inforidge.attention")


def token_kinds(prompt, offsets):
    """The kind index (into KINDS) of each token of `prompt` from its (start, end) character offsets."""
    words = [(m.start(), m.end(), word_kind(m.group())) for m in re.finditer(r"\S+", prompt)]

    def kind(start, end):
        # the word holding the token's first non-blank character; none for special tokens (empty span)
        text = prompt[start:end]
        first = start + len(text) - len(text.lstrip())
        return next((k for a, b, k in words if a <= first < b), "rest") if first < end else "rest"

    kinds = [KINDS.index(kind(start, end)) for start, end in offsets]
    kinds[-1] = KINDS.index("last")
    return kinds


def encode_batch(tokenizer, prompts, padding_side, device):
    """(ids, attention mask, position ids, kinds) [batch, width] of padded prompts; the kind of a
    padding position is -1, and the prediction position is each row's last real one."""
    encoded = tokenizer(prompts, return_offsets_mapping=True)
    width = max(len(ids) for ids in encoded.input_ids)
    rows = {"ids": [], "mask": [], "kinds": []}
    for prompt, ids, offsets in zip(prompts, encoded.input_ids, encoded.offset_mapping):
        pad = width - len(ids)
        for key, real, filler in (("ids", ids, tokenizer.pad_token_id), ("mask", [1] * len(ids), 0),
                                  ("kinds", token_kinds(prompt, offsets), -1)):
            rows[key].append(real + [filler] * pad if padding_side == "right" else [filler] * pad + real)
    ids, mask, kinds = (torch.tensor(rows[key], device=device) for key in ("ids", "mask", "kinds"))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generation numbers left-padded rows
    return ids, mask, positions, kinds


@torch.no_grad()
def layer_masses(model, ids, mask, positions, kinds):
    """[batch, layers, len(KINDS)] attention mass from each row's last real position to each kind,
    averaged over heads."""
    attentions = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_attentions=True).attentions
    last = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)  # the last real position, right or left padded
    rows = torch.arange(ids.shape[0], device=ids.device)
    weights = torch.stack([a[rows, :, last].float().mean(1) for a in attentions], dim=1)  # [batch, layers, width]
    one_hot = torch.nn.functional.one_hot(kinds.clamp(min=0), len(KINDS)).float() * (kinds >= 0)[..., None]
    return weights @ one_hot


def batch_frame(model, tokenizer, examples, padding_side):
    """The CSV rows (without run tags) of one batch of examples."""
    ids, mask, positions, kinds = encode_batch(tokenizer, [e["prompt"] for e in examples], padding_side, model.device)
    masses = layer_masses(model, ids, mask, positions, kinds).cpu().numpy()
    count, layers = masses.shape[:2]
    return pl.DataFrame({
        "split": np.repeat([e["split"] for e in examples], layers),
        "example_id": np.repeat([e["id"] for e in examples], layers),
        "layer": np.tile(np.arange(1, layers + 1), count),
        **{kind: masses[..., i].reshape(-1) for i, kind in enumerate(KINDS)},
    })


def attention_masses(model, tokenizer, examples, batch_size, padding_side="right"):
    """The masses of every example, batch by batch (one frame); they do not depend on `padding_side`."""
    return pl.concat([batch_frame(model, tokenizer, batch, padding_side) for batch in cli.batches(examples, batch_size, log)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="post-trained model folder")
    parser.add_argument("--examples", nargs="+", required=True, help="example files (one per split)")
    parser.add_argument("--sample", type=int, required=True, help="examples drawn from each file")
    parser.add_argument("--sample-seed", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True, help="the run's training seed (a tag)")
    parser.add_argument("--threads", type=int, required=True)
    models.add_arguments(parser)
    parser.add_argument("--out", required=True, help="CSV file")
    args = parser.parse_args()
    cli.setup(args.threads)

    examples = [e for path in args.examples for e in sample(read_examples(path), args.sample, args.sample_seed, path, "the attention sample")]
    model, tokenizer = models.load(args.model, **models.options(args))
    # Here, not in models.load: editing the loader every model stage runs would rerun them all.
    model.set_attn_implementation("eager")
    log.info("%s: trained with %s; attention of its weights, unsteered", args.model, models.read_method(args.model))
    masses = attention_masses(model, tokenizer, examples, args.batch_size)
    tags = pl.DataFrame({"task": [args.task], "method": [args.method], "seed": [args.seed]})
    write_csv(args.out, tags.join(masses, how="cross"))


if __name__ == "__main__":
    cli.run(main)
