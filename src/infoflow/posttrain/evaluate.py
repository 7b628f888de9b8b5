"""Greedy decoding and scoring of a model on one or more splits of examples.

Examples of the synthetic tasks are scored by exact match of the first sentence; examples of public
data sets (with an `answer_type`, see infoflow.world.public_data) by the answer extracted from the text
(infoflow.world.scoring).

Writes one row per example (prediction, correct) and a metrics file with the accuracy overall and
per group (e.g. per attribute), so tables never need the model again.

A model post-trained with an intervention kept on at evaluation (`at_eval`, recorded in its folder)
decodes with that steering on every position (infoflow.infosteer.steer.from_folder); other models,
base models and hub models decode plainly.

Few-shot prompting (`--demonstrations K`, as evaluation harnesses prompt base models): each test
prompt follows K demonstrations from `--demonstration-examples` (the task's training split), each
written '<prompt> <answer>' (the answer after a space, as infoflow.training.sft_data.encode) and
ended by a separator. Every test item gets the same K, the first K of the training split shuffled
with `--demonstration-seed`: prompts share one prefix, so batches pad little and results depend on
the seed alone (and K=2's demonstrations are K=4's first two). Training examples whose prompt is a
test prompt are never drawn. The separator is a newline where the tokenizer keeps one; the world's
word-level tokenizer drops whitespace, so there it is the EOS token, which ends every document of
its pretraining corpus and every SFT example, and so ends an answer as a newline ends it in scoring.
K=0 prompts exactly as before.

With `--demonstration-examples`, an answer also ends where a next item would begin, as harnesses
stop base models at the start of the next question: at the words every training prompt opens with
(the knowledge world's 'Q :'; none on the modular task, whose prompts share no opening). A base
model that has learned question-answer documents asks the next question itself after answering,
and that text is not its answer.

The format rate is the share of predictions that answer in the task's format, right or wrong
(infoflow.world.scoring.is_in_format). An exact answer is in format if it is an answer of its group
(`--group-by`) in the test split or in `--demonstration-examples` when given: the test split's own
answers count too, so that a right answer is always in format (the modular task's OOD answers
never occur in its training split).
"""

import argparse
import json
import logging
import random

import polars as pl

from infoflow import cli
from infoflow.infosteer import steer
from infoflow.training import models
from infoflow.world import scoring
from infoflow.training.generation import greedy_generate
from infoflow.io import DataError, read_examples, write_csv, write_json

log = logging.getLogger("infoflow.posttrain.evaluate")


def is_correct(prediction, example):
    if "answer_type" in example:
        return scoring.is_correct(prediction, example)
    return scoring.exact_match(prediction, example["answer"])


def group_of(example, group_by):
    return str(example.get(group_by, "all"))


def score(examples, predictions, group_by, training=()):
    """(one row per example: id, group, answer, prediction, correct; the metrics overall and per
    group), the format rate judged against the answers of `training` and `examples` (module docstring)."""
    groups = [group_of(e, group_by) for e in examples]
    reference = [*training, *examples]
    format_answers = scoring.answer_sets(reference, [group_of(e, group_by) for e in reference])
    frame = pl.DataFrame(
        {
            "id": [e["id"] for e in examples],
            "group": groups,
            "answer": [e["answer"] for e in examples],
            "prediction": predictions,
            "correct": [is_correct(p, e) for p, e in zip(predictions, examples)],
            "in_format": [scoring.is_in_format(p, e, format_answers.get(g, set())) for p, e, g in zip(predictions, examples, groups)],
        },
        schema={"id": pl.String, "group": pl.String, "answer": pl.String, "prediction": pl.String, "correct": pl.Boolean,
                "in_format": pl.Boolean},
    )
    per_group = frame.group_by("group").agg(n=pl.len(), accuracy=pl.col("correct").mean(), format_rate=pl.col("in_format").mean())
    metrics = {
        "n": len(frame),
        "accuracy": float(frame["correct"].mean()),
        "format_rate": float(frame["in_format"].mean()),
        "by_group": {g: {"n": n, "accuracy": float(accuracy), "format_rate": float(rate)}
                     for g, n, accuracy, rate in per_group.sort("group").iter_rows()},
    }
    return frame.drop("in_format"), metrics  # the predictions file keeps its columns


def draw_demonstrations(examples, k, seed, test_prompts, path):
    """The first `k` of `examples` shuffled with `seed`, leaving out those whose prompt is in `test_prompts`."""
    candidates = [e for e in examples if e["prompt"] not in test_prompts]
    if len(candidates) < k:
        raise DataError(f"{path}: {len(candidates)} examples that are not test items, fewer than --demonstrations {k}")
    random.Random(seed).shuffle(candidates)
    return candidates[:k]


def demonstration_separator(tokenizer):
    """What ends each demonstration: a newline if the tokenizer keeps it, else its EOS token (see the module docstring)."""
    keeps_newlines = "\n" in tokenizer.decode(tokenizer("a\nb", add_special_tokens=False).input_ids)
    return "\n" if keeps_newlines else tokenizer.eos_token


def item_opening(examples):
    """The words every prompt of `examples` opens with ('' when they share none, or there are none)."""
    prompts = [e["prompt"].split() for e in examples]
    shared = []
    for words in zip(*prompts):
        if len(set(words)) > 1:
            break
        shared.append(words[0])
    return " ".join(shared)


def cut_at(predictions, opening):
    """Each prediction up to the first `opening` in it (all of it when `opening` is '')."""
    return [p.split(opening, 1)[0] if opening else p for p in predictions]


def few_shot_prompt(demonstrations, prompt, separator):
    return "".join(f"{d['prompt']} {d['answer']}{separator}" for d in demonstrations) + prompt


def check_context(model, tokenizer, prompts, max_new_tokens, k):
    """Stop if a few-shot prompt and its answer outgrow the model's positions (the world's model has few)."""
    positions = getattr(model.config, "max_position_embeddings", None)
    longest = max(len(tokenizer(p).input_ids) for p in prompts)
    if positions and longest + max_new_tokens > positions:
        raise cli.StageFailure(f"--demonstrations {k}: prompts of up to {longest} tokens and --max-new-tokens {max_new_tokens}"
                               f" exceed the model's {positions} positions")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--examples", nargs="+", required=True, help="one example file per split")
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--group-by", default="attribute", help="example field for the per-group accuracy and format rate")
    parser.add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE", help="labels stored with the metrics")
    parser.add_argument("--splits", nargs="+", required=True, help="split name of each example file (a tag)")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--demonstrations", type=int, default=0, metavar="K", help="demonstrations before each prompt (0: zero-shot)")
    parser.add_argument("--demonstration-examples", help="the training split the demonstrations and the format's answers come from")
    parser.add_argument("--demonstration-seed", type=int, default=0, help="seed of the demonstrations' draw")
    models.add_arguments(parser)
    parser.add_argument("--predictions", nargs="+", required=True, help="one CSV per split")
    parser.add_argument("--metrics", nargs="+", required=True, help="one JSON per split")
    args = parser.parse_args()
    cli.setup(args.threads)

    if not len(args.examples) == len(args.splits) == len(args.predictions) == len(args.metrics):
        parser.error("--examples, --splits, --predictions and --metrics need one entry per split")
    if args.demonstrations < 0:
        parser.error(f"--demonstrations must be 0 or more, got {args.demonstrations}")
    if args.demonstrations and not args.demonstration_examples:
        parser.error("--demonstrations needs --demonstration-examples (the training split)")
    example_sets = [read_examples(path) for path in args.examples]  # bad files fail before the model loads
    training = read_examples(args.demonstration_examples) if args.demonstration_examples else []
    test_prompts = {e["prompt"] for examples in example_sets for e in examples}
    demonstrations = draw_demonstrations(training, args.demonstrations, args.demonstration_seed, test_prompts, args.demonstration_examples)
    model, tokenizer = models.load(args.model, **models.options(args))
    separator, opening = demonstration_separator(tokenizer), item_opening(training)
    prompt_sets = [[few_shot_prompt(demonstrations, e["prompt"], separator) for e in examples] for examples in example_sets]
    if demonstrations:
        check_context(model, tokenizer, [p for prompts in prompt_sets for p in prompts], args.max_new_tokens, args.demonstrations)
    tags = cli.parse_tags(args.tags)
    with steer.from_folder(model, args.model) as steering:
        if steering is not None:
            log.info("decoding under %s steering (trained with at_eval)", steering.method)
        for examples, prompts, split, predictions_path, metrics_path in zip(
            example_sets, prompt_sets, args.splits, args.predictions, args.metrics
        ):
            predictions = cut_at(greedy_generate(model, tokenizer, prompts, args.max_new_tokens, args.batch_size), opening)
            frame, metrics = score(examples, predictions, args.group_by, training)
            write_csv(predictions_path, frame)
            write_json(metrics_path, {**metrics, "demonstrations": args.demonstrations, "tags": {**tags, "split": split}})
            print(json.dumps({"split": split, "n": metrics["n"], "accuracy": metrics["accuracy"], "format_rate": metrics["format_rate"]}))


if __name__ == "__main__":
    cli.run(main)
