"""Key-distribution shift (InfoSteer Sec. 6.1): where post-training moves the FFN key coefficients.

On a fixed, seeded sample of prompts, every key coefficient of every layer at every real token is
binned into low / medium / high by the base model's own 25th and 75th percentiles of that layer.
The base model therefore has shares 25 / 50 / 25 by construction; post-training moves them.

  thresholds: the base model's percentiles per layer;
  shares:     a model's share of coefficients in each region, per layer and overall.

key_shift_report.py tables and plots the shares of every run.
"""

import argparse
import json
import random

import numpy as np
import torch

from infoflow import cli
from infoflow.training import models
from infoflow.io import read_examples, write_json
from infoflow.training.layers import memory_modules

REGIONS = ("low", "medium", "high")


def sample_prompts(path, n, seed):
    examples = read_examples(path)
    return [e["prompt"] for e in random.Random(seed).sample(examples, min(n, len(examples)))]


@torch.no_grad()
def collect_keys(model, tokenizer, prompts, batch_size):
    """Per layer, a float32 vector of all key coefficients at the prompts' real tokens."""
    modules = memory_modules(model)
    collected = [[] for _ in modules]
    mask = None

    def hook(layer):
        return lambda module, args: collected[layer].append(args[0][mask].float().flatten().cpu())

    handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(modules)]
    try:
        tokenizer.padding_side = "right"
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True).to(model.device)
            mask = batch["attention_mask"].bool()
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    return [torch.cat(parts) for parts in collected]


def thresholds(keys):
    return [{"p25": float(torch.quantile(k, 0.25)), "p75": float(torch.quantile(k, 0.75))} for k in keys]


def shares(keys, layer_thresholds):
    """Share of coefficients below p25, between, and above p75, per layer and pooled over layers."""
    per_layer, counts = [], np.zeros(3)
    for k, t in zip(keys, layer_thresholds):
        low, high = int((k < t["p25"]).sum()), int((k > t["p75"]).sum())
        layer_counts = np.array([low, len(k) - low - high, high])
        counts += layer_counts
        per_layer.append(dict(zip(REGIONS, (layer_counts / len(k)).tolist())))
    return {"overall": dict(zip(REGIONS, (counts / counts.sum()).tolist())), "per_layer": per_layer}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    for name in ("thresholds", "shares"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--examples", required=True, help="prompts are sampled from this file")
        p.add_argument("--n", type=int, required=True, help="prompts in the sample")
        p.add_argument("--seed", type=int, required=True, help="sampling seed (the same sample for every model)")
        p.add_argument("--batch-size", type=int, required=True)
        p.add_argument("--threads", type=int, required=True)
        models.add_arguments(p)
        p.add_argument("--out", required=True)
    sub.choices["thresholds"].add_argument("--shares", required=True, help="the base model's own shares (25/50/25)")
    sub.choices["shares"].add_argument("--thresholds", required=True)
    sub.choices["shares"].add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cli.setup(args.threads)
    prompts = sample_prompts(args.examples, args.n, args.seed)
    model, tokenizer = models.load(args.model, **models.options(args))
    keys = collect_keys(model, tokenizer, prompts, args.batch_size)
    if args.step == "thresholds":
        layer_thresholds = thresholds(keys)
        write_json(args.out, {"n_prompts": len(prompts), "layers": layer_thresholds})
        write_json(args.shares, {**shares(keys, layer_thresholds), "tags": {"method": "base"}})
    else:
        with open(args.thresholds) as f:
            layer_thresholds = json.load(f)["layers"]
        write_json(args.out, {**shares(keys, layer_thresholds), "tags": cli.parse_tags(args.tags)})


if __name__ == "__main__":
    cli.run(main)
