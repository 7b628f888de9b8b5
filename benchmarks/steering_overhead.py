"""Median training-step time of InfoSteer's methods against plain SFT, measured side by side.

A step is forward, backward and AdamW update of the default base-model shape (config.yaml), with
the same hooks and loss the pipeline's training uses (infoflow.infosteer.steer). Methods are interleaved
step by step, each round in a rotated order, so machine noise hits them alike; the figure is the
median over rounds of a method's step time divided by SFT's step time in the same round.

Two more runs, interleaved with the others, are SFT steps whose hooks only compute, without a
gradient, the one operation each method cannot do without on every layer's keys (per-token top-k
for the intervention; abs, log and the dot product of the entropy for the regulariser): floors under
any implementation of the methods, measured where the methods run, inside a training step (the
same operations on a tensor by themselves take half the time or less: the step leaves the caches
cold).

    python benchmarks/steering_overhead.py [--steps 60] [--batch 32] [--length 16]
        [--hidden-size H --intermediate-size M --layers L --heads A --kv-heads K]   (another shape
        than config.yaml's base model; Qwen2.5-0.5B's layers: 896, 4864, heads 14, kv-heads 2)
"""

import argparse
import math
import platform
import statistics
import time

import torch
import yaml
from transformers import AutoConfig, AutoModelForCausalLM

import headline
from infoflow.training.layers import memory_modules
from infoflow.infosteer.steer import Steering

METHODS = {
    "sft": None,
    "intervention (p=0.01, alpha=1)": ("intervention", {"p": 0.01, "alpha": 1.0}),
    "regularization (lambda=0.01)": ("regularization", {"lam": 0.01}),
}
TARGETS = {"intervention (p=0.01, alpha=1)": 1.02, "regularization (lambda=0.01)": 1.05}


def base_shape(config_path, **overrides):
    """config.yaml's base_model with the given (non-None) overrides; kv_heads defaults to heads."""
    base = {**yaml.safe_load(open(config_path))["base_model"], **{k: v for k, v in overrides.items() if v}}
    return {**base, "kv_heads": base.get("kv_heads") or base["heads"]}


def base_model(shape, vocab_size):
    config = AutoConfig.for_model(
        shape["architecture"], vocab_size=vocab_size, hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"], max_position_embeddings=512,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def topk_floor(keys, p=0.01):
    keys.topk(math.ceil(p * keys.shape[-1]), dim=-1, largest=False, sorted=False)


def entropy_floor(keys):
    a = keys.abs()
    torch.linalg.vecdot(a, torch.log(a))


FLOORS = {"floor: SFT + per-token top-k of every layer's keys, no gradient": topk_floor,
          "floor: SFT + abs, log and dot of every layer's keys, no gradient": entropy_floor}


def install_floor(model, operation):
    def hook(module, args):
        with torch.no_grad():
            operation(args[0])

    for module in memory_modules(model):
        module.register_forward_pre_hook(hook)


def step(model, optimizer, batch, steering):
    if steering is not None:
        steering.set_positions(batch["attention_mask"], batch["labels"])
    loss = model(**batch).loss
    if steering is not None and steering.method == "regularization":
        loss = loss - steering.lam * steering.entropy()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--intermediate-size", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--heads", type=int)
    parser.add_argument("--kv-heads", type=int)
    headline.add_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = 500
    ids = torch.randint(0, vocab, (args.batch, args.length))
    batch = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}
    shape = base_shape(args.config, hidden_size=args.hidden_size, intermediate_size=args.intermediate_size,
                       layers=args.layers, heads=args.heads, kv_heads=args.kv_heads)
    runs = {}
    for name, spec in [*METHODS.items(), *((name, None) for name in FLOORS)]:
        model = base_model(shape, vocab).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        steering = None if spec is None else Steering(model, spec[0], **spec[1])
        if name in FLOORS:
            install_floor(model, FLOORS[name])
        runs[name] = (model, optimizer, steering, [])
    names = list(runs)
    for i in range(args.warmup + args.steps):
        for name in names[i % len(names):] + names[:i % len(names)]:
            model, optimizer, steering, times = runs[name]
            start = time.perf_counter()
            step(model, optimizer, batch, steering)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    sft_times = runs["sft"][3]
    ratios = {name: statistics.median(t / t_sft for t, t_sft in zip(run[3], sft_times)) for name, run in runs.items()}
    n_params = sum(p.numel() for p in runs["sft"][0].parameters()) / 1e6
    model_name = (f"hidden {shape['hidden_size']}, intermediate {shape['intermediate_size']}, {shape['layers']} layers, "
                  f"{n_params:.2f}M parameters")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads")
    print(f"model: {model_name} (heads {shape['heads']}, kv heads {shape['kv_heads']}, vocabulary {vocab}); "
          f"batch {args.batch} x {args.length} tokens; {args.steps} steps per method, interleaved")
    print("| method | median step (ms) | IQR (ms) | ratio to SFT (median of the rounds' ratios) |")
    print("|---|---|---|---|")
    for name, (_, _, _, times) in runs.items():
        q1, _, q3 = statistics.quantiles(times, n=4)
        print(f"| {name} | {1000 * statistics.median(times):.2f} | {1000 * q1:.2f}-{1000 * q3:.2f} | {ratios[name]:.3f} |")
    headline.write(args.json, [
        *(headline.row(f"steering overhead: {name} step / SFT step (median of {args.steps}; {model_name})",
                       f"{ratios[name]:.3f}", f"<= {TARGETS[name]}", ratios[name] <= TARGETS[name]) for name in TARGETS),
        *(headline.row(f"steering overhead {name} / SFT step ({model_name})", f"{ratios[name]:.3f}") for name in FLOORS),
    ])


if __name__ == "__main__":
    main()
