"""Post-train (SFT) a causal LM on prompt/answer examples with the Hugging Face Trainer.

The loss covers the answer tokens (and the closing EOS) only: prompt positions get the label -100.
`--method` is `sft` (the baseline), an InfoSteer method (`intervention`, `regularization` or one of
the fine-grained variants of infoflow.infosteer.variants), or `lora`; the method's parameters come as
`--method-params key=value ...` (see infoflow.infosteer.steer and infoflow.training.lora). A variant
fixes its per-key factors on the base model before training; the method record holds them ("state"). Steering hooks are removed and LoRA adapters merged before saving, so every saved
model is a plain Hugging Face model; each saved folder (model and checkpoints) also holds the method and its
parameters (infoflow.training.models.METHOD_FILE), with `--at-eval` for an intervention that stays on while
decoding (infoflow.infosteer.steer.from_folder).

Started by a launcher (`torchrun --nproc_per_node N -m infoflow.posttrain.finetune ...`), it trains one
model on N devices, shared by `--sharding` (infoflow.training.distributed); rank 0 writes every file.
"""

import argparse
import contextlib
import logging
import os
import shutil

from transformers import set_seed

from infoflow import cli
from infoflow.cli import StageFailure
from infoflow.infosteer import steer
from infoflow.training import distributed, lora, models, trainer
from infoflow.io import read_examples, write_json
from infoflow.training.resume import resumable
from infoflow.training.sft_data import PadCollator, encode

log = logging.getLogger("infoflow.posttrain.finetune")
METHOD_KINDS = ("sft", *steer.METHODS, "lora")
def checkpoint_saver(tokenizer, folder, plain_model, method):
    """Save a checkpoint as a loadable model folder `folder/pointNN`, with its step in checkpoint.json
    and the `method` record (models.save); every process calls it, rank 0 writes.

    `plain_model` turns the training model into the plain model to save (LoRA: merged adapters)."""

    def save(model, point, step):
        weights = distributed.full_state_dict(model)  # gathered from every process when sharded
        if distributed.is_main():
            out = os.path.join(folder, f"point{point:02d}")
            write_json(os.path.join(out, "checkpoint.json"), {"point": point, "step": step})
            # The weights, written last, are the DAG's output.
            models.save(plain_model(model), tokenizer, out, method, state_dict=weights)

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
    parser.add_argument("--at-eval", action="store_true", help="an intervention stays on while decoding (stored with the model)")
    parser.add_argument("--max-length", type=int, default=0, help="tokens per example at most (0: no limit)")
    parser.add_argument("--checkpoints", type=int, default=0, help="evenly spaced checkpoints after step 0 (0: none)")
    parser.add_argument("--checkpoint-dir", help="folder of the checkpoints (point00, point01, ...)")
    parser.add_argument("--sharding", choices=distributed.SHARDINGS, default="none",
                        help="how the processes of a launched job share the model (infoflow.training.distributed)")
    trainer.add_arguments(parser)
    models.add_arguments(parser)
    args = parser.parse_args()
    steered = args.method in steer.METHODS
    try:
        params = (steer.parse_spec if steered else lora.parse_params)(args.method_params) if args.method != "sft" else {}
    except ValueError as e:
        parser.error(str(e))
    if args.at_eval and args.method not in steer.DECODING_METHODS:
        parser.error(f"--at-eval: only an intervention (or a variant of it) changes decoding, not {args.method}")
    if args.method == "lora" and args.sharding == "fsdp":
        parser.error("--sharding fsdp: LoRA adapters are merged from whole weights; use --sharding none or deepspeed")
    method = {"method": args.method}  # saved with every model folder (models.METHOD_FILE)
    if args.method != "sft":
        method["params"] = params
    if steered:
        method["at_eval"] = args.at_eval
    cli.setup(args.threads)
    distributed.prepare(args.sharding)

    set_seed(args.seed)
    examples = read_examples(args.train)
    per_device = distributed.training_bytes(models.resolve_precision(args.precision), args.sharding)
    model, tokenizer = models.load(args.model, precision=args.precision, training_bytes=per_device, **models.options(args))
    train_set = [encode(tokenizer, e["prompt"], e["answer"], args.max_length) for e in examples]
    if args.method == "lora":
        model = lora.attach(model, **params)
    plain_model = lora.merged_copy if args.method == "lora" else (lambda m: m)
    # A resumable run keeps its checkpoints with the Trainer's until the end: a killed job's outputs
    # are deleted by Snakemake, and the resumed run does not save the points before its restart.
    points_dir = os.path.join(args.resume_dir, "points") if resumable(args) else args.checkpoint_dir
    saver = checkpoint_saver(tokenizer, points_dir, plain_model, method)
    callbacks = [trainer.SaveCheckpoints(args.checkpoints, saver)] if args.checkpoints else []
    run_label = " ".join([args.method, *args.method_params, f"seed={args.seed}"])
    log.info("%s on %d examples", run_label, len(train_set))
    inputs = [args.train, *(p for p in [os.path.join(args.model, "model.safetensors")] if os.path.exists(p))]
    with contextlib.ExitStack() as stack:
        try:
            steering = stack.enter_context(steer.steer(model, args.method, examples=train_set, **params)) if steered else None
        except ValueError as e:  # a parameter value the method is not defined for, named by the message
            raise StageFailure(f"--method-params of {args.method}: {e}") from e
        if steering is not None and steering.state is not None:
            method["state"] = steering.state  # the savers hold this record: every saved folder gets it
        history = trainer.train(
            model, train_set, args, scheduler="linear", run_label=run_label, collator=PadCollator(tokenizer.pad_token_id),
            logging_steps=5, steering=steering, callbacks=callbacks, inputs=inputs,
        )
    if args.method == "lora":
        model = model.merge_and_unload()
    weights = distributed.full_state_dict(model)
    if not distributed.is_main():
        return
    models.save(model, tokenizer, args.out, method, state_dict=weights)
    write_json(args.history, history)
    if resumable(args):
        if args.checkpoints:
            publish(points_dir, args.checkpoint_dir)
        shutil.rmtree(args.resume_dir)


if __name__ == "__main__":
    cli.run(main)
