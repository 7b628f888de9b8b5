"""Activation extraction (infoflow.inforidge.extract) against a bare batched forward pass, and its memory.

Time: the pipeline's extraction of N examples (tokenising, forward with hidden states, the hook on
the last block, early-exit heads, Parquet writing) against a bare `model(..., output_hidden_states=True)`
over the same, already tokenised batches; the two are interleaved repetition by repetition and
the figure is the median over repetitions of extraction time / bare time.
Memory: peak RSS of a fresh process extracting N and 4N examples (the writer streams batches, so
the 4N run should need no more memory than the N run).

    python benchmarks/extraction.py [--examples 400] [--repeats 7] [--batch-size 100]

The model has the default base-model shape of config.yaml (random weights) and the modular task's
prompts; the checkpoint's weights do not change the cost.
"""

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

import headline
from infoflow.inforidge.extract import encode_batch, extract
from infoflow.world.modular_task import make_task
from infoflow.training.pretrain import build_model
from infoflow.world.tokenizer import train_tokenizer


def setup(examples, config_path="config.yaml"):
    """(model, tokenizer, examples) at the default base-model shape."""
    task = yaml.safe_load(open(config_path))["modular_task"]
    base = yaml.safe_load(open(config_path))["base_model"]
    data = make_task(task["id_modulus"], task["ood_moduli"], task["elements"], task["noise_values"],
                     n_train=10, n_test=examples, n_corpus=10, seed=0)
    tokenizer = train_tokenizer(data["corpus"] + [e["prompt"] + " " + e["answer"] for e in data["test_id"]])
    torch.manual_seed(0)
    model = build_model(tokenizer, base["architecture"], hidden_size=base["hidden_size"], intermediate_size=base["intermediate_size"],
                        layers=base["layers"], heads=base["heads"], max_length=base["block_size"]).eval()
    return model, tokenizer, data["test_id"]


@torch.no_grad()
def bare_forward(model, batches):
    for ids, mask in batches:
        model(input_ids=ids, attention_mask=mask, output_hidden_states=True)


def peak_rss_mb(examples, batch_size):
    """Peak RSS (MB) of a fresh process that sets up and extracts `examples` examples."""
    command = [sys.executable, __file__, "--child", str(examples), "--batch-size", str(batch_size)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def child(examples, batch_size):
    model, tokenizer, rows = setup(examples)
    with tempfile.TemporaryDirectory() as folder:
        extract(model, tokenizer, rows, Path(folder) / "a.parquet", TAGS, batch_size, "both")
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


TAGS = {"task": "modular", "method": "sft", "seed": 0, "point": 0, "step": 0}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # the memory measurement's own process
    headline.add_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        return child(args.child, args.batch_size)
    model, tokenizer, rows = setup(args.examples)
    batches = [encode_batch(tokenizer, rows[i : i + args.batch_size], model.device)[:2] for i in range(0, len(rows), args.batch_size)]
    times = {"extraction": [], "bare forward": []}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats + 1):  # the first round warms up
            start = time.perf_counter()
            extract(model, tokenizer, rows, Path(folder) / "a.parquet", TAGS, args.batch_size, "both")
            middle = time.perf_counter()
            bare_forward(model, batches)
            end = time.perf_counter()
            if repeat:
                times["extraction"].append(middle - start)
                times["bare forward"].append(end - middle)
    rss = {n: peak_rss_mb(n, args.batch_size) for n in (args.examples, 4 * args.examples)}
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} threads; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {args.examples} examples, batch {args.batch_size}")
    print("| measurement | median | spread (min-max) | target |")
    print("|---|---|---|---|")
    for name, values in times.items():
        print(f"| {name} (s) | {statistics.median(values):.3f} | {min(values):.3f}-{max(values):.3f} | |")
    ratio = statistics.median(e / b for e, b in zip(times["extraction"], times["bare forward"]))
    print(f"| extraction / bare forward | {ratio:.3f} | | <= 1.15 |")
    growth = rss[4 * args.examples] / rss[args.examples] - 1
    print(f"| peak RSS, {args.examples} -> {4 * args.examples} examples (MB) | {rss[args.examples]:.0f} -> {rss[4 * args.examples]:.0f} "
          f"({100 * growth:+.1f}%) | | < +10% |")
    headline.write(args.json, [
        headline.row(f"extraction / bare forward with hidden states ({args.examples} examples)", f"{ratio:.3f}", "<= 1.15", ratio <= 1.15),
        headline.row(f"extraction peak RSS growth, {args.examples} -> {4 * args.examples} examples", f"{100 * growth:+.1f}%", "< +10%", growth < 0.10),
    ])


if __name__ == "__main__":
    main()
