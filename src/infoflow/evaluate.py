"""Greedy decoding and exact-match scoring of a model on one split of examples.

Writes one row per example (prediction, correct) and a metrics file with the accuracy overall and
per group (e.g. per attribute), so tables never need the model again.
"""

import argparse
import json
import re

import pandas as pd
import torch

from infoflow import cli, models
from infoflow.io import read_examples, write_csv, write_json

# A prediction ends at the first sentence end or line break; spacing and case are not scored.
ANSWER_END = re.compile(r"[.\n]")


def normalize(text):
    return " ".join(ANSWER_END.split(text, maxsplit=1)[0].split()).lower()


def exact_match(prediction, answer):
    return normalize(prediction) == normalize(answer)


@torch.no_grad()
def greedy_generate(model, tokenizer, prompts, max_new_tokens, batch_size):
    """Greedy continuations of `prompts` (text after the prompt, special tokens dropped)."""
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    outputs = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True).to(model.device)
        generated = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = generated[:, batch["input_ids"].shape[1] :]
        outputs.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return outputs


def score(examples, predictions, group_by):
    frame = pd.DataFrame(
        {
            "id": [e["id"] for e in examples],
            "group": [str(e.get(group_by, "all")) for e in examples],
            "answer": [e["answer"] for e in examples],
            "prediction": predictions,
        }
    )
    frame["correct"] = [exact_match(p, a) for p, a in zip(frame.prediction, frame.answer)]
    metrics = {
        "n": len(frame),
        "accuracy": float(frame.correct.mean()),
        "by_group": {g: {"n": len(c), "accuracy": float(c.mean())} for g, c in frame.groupby("group").correct},
    }
    return frame, metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--examples", required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--group-by", default="attribute", help="example field for the per-group accuracy")
    parser.add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE", help="labels stored with the metrics")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    cli.setup(args.threads)

    examples = read_examples(args.examples)
    model, tokenizer = models.load(args.model)
    predictions = greedy_generate(model, tokenizer, [e["prompt"] for e in examples], args.max_new_tokens, args.batch_size)
    frame, metrics = score(examples, predictions, args.group_by)
    write_csv(args.predictions, frame)
    write_json(args.metrics, {**metrics, "tags": dict(tag.split("=", 1) for tag in args.tags)})
    print(json.dumps({"n": metrics["n"], "accuracy": metrics["accuracy"]}))


if __name__ == "__main__":
    cli.run(main)
