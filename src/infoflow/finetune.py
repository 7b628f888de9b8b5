"""Post-train (SFT) a causal LM on prompt/answer examples with the Hugging Face Trainer.

The loss covers the answer tokens (and the closing EOS) only: prompt positions get the label -100.
`--method` is `sft` (the baseline), an InfoSteer method, `intervention` or `regularization`, or
`lora`; the method's parameters come as `--method-params key=value ...` (see infoflow.steer and
infoflow.lora). Steering hooks are removed and LoRA adapters merged before saving, so every saved
model is a plain Hugging Face model.
"""

import argparse
import contextlib
import logging
import os
import shutil

import torch
from transformers import set_seed

from infoflow import cli, lora, models, steer, training
from infoflow.io import read_examples, write_json

log = logging.getLogger("infoflow.finetune")
IGNORE_INDEX = -100  # the label the Hugging Face loss skips
METHOD_KINDS = ("sft", *steer.METHODS, "lora")


def encode(tokenizer, prompt, answer, max_length=None):
    """Token ids of prompt + answer + EOS, with labels on the answer and EOS only; beyond
    `max_length` tokens the start of the prompt is cut, so the answer is always kept."""
    prompt_ids = tokenizer(prompt).input_ids
    answer_ids = tokenizer(" " + answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    input_ids, labels = prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    if max_length:
        input_ids, labels = input_ids[-max_length:], labels[-max_length:]
    return {"input_ids": input_ids, "labels": labels}


class PadCollator:
    """Right-pad a batch: pad ids for inputs, IGNORE_INDEX for labels, zeros in the attention mask."""

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, features):
        width = max(len(f["input_ids"]) for f in features)

        def padded(key, value):
            return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features])

        mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features])
        return {"input_ids": padded("input_ids", self.pad_token_id), "labels": padded("labels", IGNORE_INDEX), "attention_mask": mask}


def checkpoint_saver(tokenizer, folder, plain_model):
    """Save a checkpoint as a loadable model folder `folder/pointNN`, with its step in checkpoint.json.

    `plain_model` turns the training model into the plain model to save (LoRA: merged adapters)."""

    def save(model, point, step):
        out = os.path.join(folder, f"point{point:02d}")
        write_json(os.path.join(out, "checkpoint.json"), {"point": point, "step": step})
        models.save(plain_model(model), tokenizer, out)  # the weights, written last, are the DAG's output

    return save


def publish(staging, folder):
    """Copy the checkpoint folders kept in `staging` during a resumable run to `folder`, each
    appearing whole; the staging copies stay until the caller deletes the resume folder."""
    for name in sorted(os.listdir(staging)):
        partial = os.path.join(folder, f".{name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(os.path.join(staging, name), partial)
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        os.replace(partial, os.path.join(folder, name))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="base model folder or hub id")
    parser.add_argument("--train", required=True, help="JSON-lines examples")
    parser.add_argument("--method", required=True, choices=METHOD_KINDS)
    parser.add_argument("--method-params", nargs="*", default=[], metavar="KEY=VALUE", help="the method's parameters")
    parser.add_argument("--max-length", type=int, default=0, help="tokens per example at most (0: no limit)")
    parser.add_argument("--checkpoints", type=int, default=0, help="evenly spaced checkpoints after step 0 (0: none)")
    parser.add_argument("--checkpoint-dir", help="folder of the checkpoints (point00, point01, ...)")
    training.add_arguments(parser)
    models.add_arguments(parser)
    args = parser.parse_args()
    steered = args.method in steer.METHODS
    try:
        params = (steer.parse_spec if steered else lora.parse_params)(args.method_params) if args.method != "sft" else {}
    except ValueError as e:
        parser.error(str(e))
    cli.setup(args.threads)

    set_seed(args.seed)
    examples = read_examples(args.train)
    model, tokenizer = models.load(args.model, training=True, **models.options(args))
    train_set = [encode(tokenizer, e["prompt"], e["answer"], args.max_length) for e in examples]
    if args.method == "lora":
        model = lora.attach(model, **params)
    plain_model = lora.merged_copy if args.method == "lora" else (lambda m: m)
    # A resumable run keeps its checkpoints with the Trainer's until the end: a killed job's outputs
    # are deleted by Snakemake, and the resumed run does not save the points before its restart.
    points_dir = os.path.join(args.resume_dir, "points") if training.resumable(args) else args.checkpoint_dir
    saver = checkpoint_saver(tokenizer, points_dir, plain_model)
    callbacks = [training.SaveCheckpoints(args.checkpoints, saver)] if args.checkpoints else []
    run_label = " ".join([args.method, *args.method_params, f"seed={args.seed}"])
    log.info("%s on %d examples", run_label, len(train_set))
    inputs = [args.train, *(p for p in [os.path.join(args.model, "model.safetensors")] if os.path.exists(p))]
    with contextlib.ExitStack() as stack:
        steering = stack.enter_context(steer.steer(model, args.method, **params)) if steered else None
        history = training.train(
            model, train_set, args, scheduler="linear", run_label=run_label, collator=PadCollator(tokenizer.pad_token_id),
            logging_steps=5, steering=steering, callbacks=callbacks, inputs=inputs,
        )
    if args.method == "lora":
        model = model.merge_and_unload()
    models.save(model, tokenizer, args.out)
    write_json(args.history, history)
    if training.resumable(args):
        if args.checkpoints:
            publish(points_dir, args.checkpoint_dir)
        shutil.rmtree(args.resume_dir)


if __name__ == "__main__":
    cli.run(main)
