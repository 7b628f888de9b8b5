"""Token-flux extraction (generation + per-token key entropies) against plain greedy generation.

Both sides generate the responses of the same prompts with the same batches; the flux side adds
what infoflow.infosteer.flux adds (key-entropy hooks during generation, one more decoding step, the token
classes and the Parquet columns). Interleaved repetitions; the figure is the ratio of medians.
Needs a post-trained model of the default run:

    python benchmarks/flux_overhead.py --model <a post-trained model folder; results/<run>/runs.csv lists them>
        [--prompts resources/base-<key>/data/knowledge/cloze.jsonl] [--examples 100] [--repeats 7]
"""

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import yaml

import headline
from infoflow.training import models
from infoflow.training.generation import generate_ids
from infoflow.sampling import sample
from infoflow.infosteer.flux import generate_with_entropies, response_rows
from infoflow.io import read_examples


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a post-trained model folder (results/<run>/runs.csv: folder/model)")
    parser.add_argument("--prompts", help="the cloze prompts (default: those of the default run's world in resources/)")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--examples", type=int)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="the token_flux rule's threads")
    headline.add_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flux = yaml.safe_load(open(args.config))["flux"]
    n = args.examples or flux["examples"]
    # The default run's world is the newest in resources/ after `make reproduce`.
    path = args.prompts or str(max(Path("resources").glob("base-*/data/knowledge/cloze.jsonl"), key=lambda p: p.stat().st_mtime))
    prompts = sample(read_examples(path), n, flux["seed"], path, "the flux sample")
    model, tokenizer = models.load(args.model)
    texts = [p["prompt"] for p in prompts]
    times = {"greedy generation": [], "generation + flux extraction": []}
    tokens = 0
    for repeat in range(args.repeats + 1):  # the first round warms up
        start = time.perf_counter()
        generate_ids(model, tokenizer, texts, flux["max_new_tokens"], flux["batch_size"])
        middle = time.perf_counter()
        for first in range(0, n, flux["batch_size"]):
            batch = prompts[first : first + flux["batch_size"]]
            responses, entropies = generate_with_entropies(model, tokenizer, [p["prompt"] for p in batch], flux["max_new_tokens"], flux["normalization"])
            tokens = len(response_rows(tokenizer, batch, responses, entropies)["flux"])
        end = time.perf_counter()
        if repeat:
            times["greedy generation"].append(middle - start)
            times["generation + flux extraction"].append(end - middle)
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} threads; model {args.model}; "
          f"{n} prompts, batch {flux['batch_size']}, up to {flux['max_new_tokens']} new tokens ({tokens} response tokens in the last batch)")
    print("| measurement | median (s) | min-max (s) | target |")
    print("|---|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f}-{max(values):.3f} | |")
    ratio = statistics.median(times["generation + flux extraction"]) / statistics.median(times["greedy generation"])
    print(f"| ratio | {ratio:.3f} | | <= 1.3 |")
    headline.write(args.json, [headline.row(f"token flux: generation with flux / greedy generation ({n} prompts)", f"{ratio:.3f}", "<= 1.3", ratio <= 1.3)])


if __name__ == "__main__":
    main()
