"""Greedy decoding and scoring of a model on one or more splits of examples.

Examples of the synthetic tasks are scored by exact match of the first sentence; examples of public
data sets (with an `answer_type`, see infoflow.world.public_data) by the answer extracted from the text
(infoflow.world.scoring).

Writes one row per example (prediction, correct) and a metrics file with the accuracy overall and
per group (e.g. per attribute), so tables never need the model again.

A model post-trained with an intervention kept on at evaluation (`at_eval`, recorded in its folder)
decodes with that steering on every position (infoflow.infosteer.steer.from_folder); other models,
base models and hub models decode plainly.
"""

import argparse
import json
import logging

import polars as pl

from infoflow import cli
from infoflow.infosteer import steer
from infoflow.training import models
from infoflow.world import scoring
from infoflow.training.generation import greedy_generate
from infoflow.io import read_examples, write_csv, write_json

log = logging.getLogger("infoflow.posttrain.evaluate")


def is_correct(prediction, example):
    if "answer_type" in example:
        return scoring.is_correct(prediction, example)
    return scoring.exact_match(prediction, example["answer"])


def score(examples, predictions, group_by):
    """(one row per example: id, group, answer, prediction, correct; the metrics overall and per group)."""
    frame = pl.DataFrame(
        {
            "id": [e["id"] for e in examples],
            "group": [str(e.get(group_by, "all")) for e in examples],
            "answer": [e["answer"] for e in examples],
            "prediction": predictions,
            "correct": [is_correct(p, e) for p, e in zip(predictions, examples)],
        },
        schema={"id": pl.String, "group": pl.String, "answer": pl.String, "prediction": pl.String, "correct": pl.Boolean},
    )
    groups = frame.group_by("group").agg(n=pl.len(), accuracy=pl.col("correct").mean()).sort("group")
    metrics = {
        "n": len(frame),
        "accuracy": float(frame["correct"].mean()),
        "by_group": {g: {"n": n, "accuracy": float(accuracy)} for g, n, accuracy in groups.iter_rows()},
    }
    return frame, metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--examples", nargs="+", required=True, help="one example file per split")
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--group-by", default="attribute", help="example field for the per-group accuracy")
    parser.add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE", help="labels stored with the metrics")
    parser.add_argument("--splits", nargs="+", required=True, help="split name of each example file (a tag)")
    parser.add_argument("--threads", type=int, required=True)
    models.add_arguments(parser)
    parser.add_argument("--predictions", nargs="+", required=True, help="one CSV per split")
    parser.add_argument("--metrics", nargs="+", required=True, help="one JSON per split")
    args = parser.parse_args()
    cli.setup(args.threads)

    if not len(args.examples) == len(args.splits) == len(args.predictions) == len(args.metrics):
        parser.error("--examples, --splits, --predictions and --metrics need one entry per split")
    example_sets = [read_examples(path) for path in args.examples]  # bad files fail before the model loads
    model, tokenizer = models.load(args.model, **models.options(args))
    tags = cli.parse_tags(args.tags)
    with steer.from_folder(model, args.model) as steering:
        if steering is not None:
            log.info("decoding under %s steering (trained with at_eval)", steering.method)
        for examples, split, predictions_path, metrics_path in zip(example_sets, args.splits, args.predictions, args.metrics):
            prompts = [e["prompt"] for e in examples]
            predictions = greedy_generate(model, tokenizer, prompts, args.max_new_tokens, args.batch_size)
            frame, metrics = score(examples, predictions, args.group_by)
            write_csv(predictions_path, frame)
            write_json(metrics_path, {**metrics, "tags": {**tags, "split": split}})
            print(json.dumps({"split": split, "n": metrics["n"], "accuracy": metrics["accuracy"]}))


if __name__ == "__main__":
    cli.run(main)
