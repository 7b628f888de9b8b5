"""The modular-progression task of InfoRidge (arXiv 2507.05387, footnote 2).

A sequence interleaves signal tokens `S{s_t}` with noise tokens `N{x}`, where
s_t = (s_0 + t * d) mod K; the model predicts the next signal token. In-distribution data use
K = `id_modulus`; out-of-distribution test examples draw K uniformly from the other `ood_moduli`.
Every answer is one token (`S{value}`), as the single-token MI analysis and early exit need.

The pretraining corpus holds noise-free progressions over all moduli, so the base model knows the
tokens and modular counting before post-training teaches the noisy format on K = `id_modulus`.
"""

import argparse
import random

from infoflow import cli
from infoflow.io import write_jsonl, write_text


def progression(rng, modulus, length):
    start, step = rng.randrange(modulus), rng.randrange(1, modulus)
    return [(start + t * step) % modulus for t in range(length)]


def noisy_example(rng, modulus, n_elements, noise_values):
    """(prompt, answer): `n_elements` (even) alternating signal/noise tokens, then the next signal."""
    signals = progression(rng, modulus, n_elements // 2 + 1)
    pairs = [f"S{s} N{rng.randrange(noise_values)}" for s in signals[:-1]]
    return " ".join(pairs), f"S{signals[-1]}"


def make_split(rng, split, count, moduli, n_elements, noise_values, exclude_prompts):
    rows, prompts = [], set()
    while len(rows) < count:
        modulus = rng.choice(moduli)
        prompt, answer = noisy_example(rng, modulus, n_elements, noise_values)
        if prompt in exclude_prompts or prompt in prompts:
            continue
        prompts.add(prompt)
        rows.append({"id": f"{split}-{len(rows):05d}", "split": split, "prompt": prompt, "answer": answer, "modulus": modulus})
    return rows, prompts


def make_task(id_modulus, ood_moduli, n_elements, noise_values, n_train, n_test, n_corpus, seed):
    """Corpus lines and the train / test_id / test_ood splits; test prompts never occur in train."""
    rng = random.Random(seed)
    all_moduli = sorted({id_modulus, *ood_moduli})
    corpus = [" ".join(f"S{s}" for s in progression(rng, rng.choice(all_moduli), n_elements)) for _ in range(n_corpus)]
    train, seen = make_split(rng, "train", n_train, [id_modulus], n_elements, noise_values, set())
    test_id, _ = make_split(rng, "test_id", n_test, [id_modulus], n_elements, noise_values, seen)
    test_ood, _ = make_split(rng, "test_ood", n_test, list(ood_moduli), n_elements, noise_values, seen)
    return {"corpus": corpus, "train": train, "test_id": test_id, "test_ood": test_ood}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--id-modulus", type=int, required=True)
    parser.add_argument("--ood-moduli", type=int, nargs="+", required=True)
    parser.add_argument("--elements", type=int, required=True)
    parser.add_argument("--noise-values", type=int, required=True)
    parser.add_argument("--train-examples", type=int, required=True)
    parser.add_argument("--test-examples", type=int, required=True)
    parser.add_argument("--corpus-sequences", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    for name in ("corpus", "train", "test-id", "test-ood"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    cli.setup()
    data = make_task(
        args.id_modulus, args.ood_moduli, args.elements, args.noise_values,
        args.train_examples, args.test_examples, args.corpus_sequences, args.seed,
    )
    write_text(args.corpus, "\n".join(data["corpus"]) + "\n")
    for split in ("train", "test_id", "test_ood"):
        write_jsonl(getattr(args, split), data[split])


if __name__ == "__main__":
    cli.run(main)
