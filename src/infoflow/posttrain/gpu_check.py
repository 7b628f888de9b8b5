"""GPU acceptance check: does the pipeline's model code run, learn and save on this machine's GPU?

On a model of Qwen2.5-0.5B's shape (random weights: no download) in the pipeline's default training
precision (infoflow.training.models.resolve_precision), it trains --steps steps each of plain SFT,
intervention and regularisation through infoflow.training.trainer.train, on a synthetic data set of runs of
consecutive words (each next token is predictable, so the loss must fall); then saves the SFT model
with models.save and loads it back with models.load, decodes one batch with
infoflow.training.generation.greedy_generate, and extracts one batch of InfoRidge activations from
the saved checkpoint with the extraction stage itself (`python -m infoflow.inforidge.extract`, as a
pipeline job runs it: post-training code does not import InfoRidge's). It checks that every loss is
finite and falls, that the steering hooks ran (the intervention changes the forward pass, the
regulariser logs its key entropy), that the loaded weights equal the saved ones and that extraction
and decoding give one result per example; and prints tokens/s, MFU and peak GPU memory.

MFU is model FLOP/s over the device's data-sheet dense bf16 peak (PEAK_BF16); model FLOPs per
trained token are 6 N + 12 L T d (PaLM's count, appendix B): N the weights of every nn.Linear (the
tied output layer once), the second term the attention scores and values of L layers at sequence
length T and width d. benchmarks/gpu.py uses the same shapes, peaks and count.

The last line is `gpu-check: PASS` (exit 0) or `gpu-check: FAIL (<reason>)` (exit 1); without a CUDA
device it says so and exits 2.

    python -m infoflow.posttrain.gpu_check [--steps 30] [--batch 8] [--length 512]
    python -m infoflow.posttrain.gpu_check --device cpu --shape tiny --steps 3 --batch 2 --length 16
        (the same checks on the CPU with a tiny model: how the tests run it)
"""

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from argparse import Namespace

import numpy as np
import pyarrow.parquet as pq
import torch
from transformers import AutoConfig, AutoModelForCausalLM, TrainerCallback

from infoflow import cli
from infoflow.infosteer.steer import steer
from infoflow.io import write_json, write_jsonl
from infoflow.training import models, trainer
from infoflow.training.generation import greedy_generate
from infoflow.training.sft_data import PadCollator
from infoflow.world.tokenizer import train_tokenizer

SHAPES = {
    # Qwen/Qwen2.5-0.5B's config.json: 0.49B parameters, 24 layers, GQA 14 query / 2 key-value heads.
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6,
                         rms_norm_eps=1e-6, max_position_embeddings=32768),
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, vocab_size=100, tie_word_embeddings=True, max_position_embeddings=64),
}
# Dense bf16 peak FLOP/s from the vendors' data sheets; the first name contained in the device's wins.
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12)]
# The methods as steering_overhead.py times them: one intervention and one regulariser setting.
METHODS = {"sft": None, "intervention": ("intervention", {"p": 0.01, "alpha": 1.0}),
           "regularization": ("regularization", {"lam": 0.01})}
WORDS = [f"w{i}" for i in range(60)]  # with the 3 special tokens, within the tiny shape's vocabulary


class CheckFailed(Exception):
    """One check did not hold; the message says which and by how much."""


def peak_bf16(device_name):
    """The data-sheet dense bf16 FLOP/s of a device, or None if PEAK_BF16 has no figure for it."""
    return next((flops for key, flops in PEAK_BF16 if key in device_name), None)


def matmul_weights(model):
    """N of 6 N: the weights of every nn.Linear (a tied output layer is one nn.Linear, counted once)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def flops_per_token(model, length):
    """Model FLOPs per trained token at sequence length `length`: 6 N + 12 L T d."""
    config = model.config
    return 6 * matmul_weights(model) + 12 * config.num_hidden_layers * length * config.hidden_size


def require(holds, reason):
    if not holds:
        raise CheckFailed(reason)


class StepEnds(TrainerCallback):
    """The time each optimizer step ended, after the device finished it."""

    def __init__(self):
        self.ends = []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


def build_model(shape, tokenizer):
    """A randomly initialised model of `shape` on the job's device, its weights in the dtype the
    pipeline trains them in (models.training_dtype of the default precision).

    A Llama (Qwen2 differs only by its q/k/v biases, under 0.01% of the weights): for a qwen2 folder,
    transformers loads Qwen's BPE tokenizer class, which cannot read the check's word-level tokenizer.
    """
    config = AutoConfig.for_model("llama", **SHAPES[shape], pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    with torch.device(models.device()):
        return AutoModelForCausalLM.from_config(config, dtype=models.training_dtype("auto"))


def progressions(tokenizer, count, length, seed):
    """`count` rows of `length` consecutive words (cyclic), each starting at a seeded random word."""
    ids = tokenizer.convert_tokens_to_ids(WORDS)
    starts = torch.randint(0, len(ids), (count,), generator=torch.Generator().manual_seed(seed)).tolist()
    return [[ids[(start + i) % len(ids)] for i in range(length)] for start in starts]


def train_method(name, model, tokenizer, settings):
    """Train `model` with method `name` for settings.steps steps; return (losses, step times, note)."""
    rows = progressions(tokenizer, settings.batch * settings.steps, settings.length, seed=0)
    args = Namespace(batch_size=settings.batch, learning_rate=settings.learning_rate, epochs=1, warmup_steps=0,
                     weight_decay=0.0, seed=0, gradient_accumulation_steps=1, gradient_checkpointing=False)
    timer, spec, note = StepEnds(), METHODS[name], ""
    with contextlib.ExitStack() as stack:
        steering = stack.enter_context(steer(model, spec[0], **spec[1])) if spec else None
        logged = trainer.train(model, [{"input_ids": r, "labels": r} for r in rows], args, scheduler="constant",
                               run_label=f"gpu-check/{name}", collator=PadCollator(tokenizer.pad_token_id),
                               logging_steps=1, steering=steering, callbacks=[timer])
        if name == "intervention":
            require(sum(steering.calls) > 0, "intervention: the steering hooks never ran")
            probe = torch.tensor(rows[: settings.batch], device=model.device)
            steering.set_positions()  # every position of the probe batch
            with torch.no_grad():
                steered = model(input_ids=probe).logits
                steering.remove()
                plain = model(input_ids=probe).logits
            change = (steered - plain).abs().max().item()
            require(change > 0, "intervention: the steered forward pass equals the plain one")
            note = f", changes the logits by up to {change:.3g}"
    losses = [entry["loss"] for entry in logged]
    require(len(losses) == settings.steps, f"{name}: {len(losses)} losses logged for {settings.steps} steps")
    require(all(math.isfinite(loss) for loss in losses), f"{name}: a training loss is not finite: {losses}")
    require(losses[-1] < losses[0], f"{name}: the loss did not fall ({losses[0]:.4f} -> {losses[-1]:.4f})")
    if name == "regularization":
        entropies = [entry.get("key_entropy") for entry in logged]
        require(all(e is not None and math.isfinite(e) for e in entropies), "regularization: no finite key_entropy logged")
        note = f", key entropy {entropies[0]:.3f} -> {entropies[-1]:.3f}"
    return losses, [b - a for a, b in zip(timer.ends, timer.ends[1:])], note  # the first step warms up


def check_checkpoint(model, tokenizer, folder):
    """Save `model` as the pipeline does, load it back and compare every weight; return the loaded pair."""
    models.save(model, tokenizer, folder)
    loaded, loaded_tokenizer = models.load(folder, dtype=str(model.dtype).removeprefix("torch."))  # as trained
    saved = model.state_dict()
    differing = [key for key, value in loaded.state_dict().items() if not torch.equal(value, saved[key])]
    require(not differing, f"checkpoint: {len(differing)} weights differ after loading back, e.g. {differing[:3]}")
    return loaded, loaded_tokenizer


def check_extraction(folder, layers, examples, settings, work):
    """One batch of activations of the saved checkpoint (of `layers` decoder layers) through the
    extraction stage; return the rows written."""
    write_json(os.path.join(folder, "checkpoint.json"), {"point": 1, "step": settings.steps})
    out, path = os.path.join(work, "activations.parquet"), os.path.join(work, "examples.jsonl")
    write_jsonl(path, examples)
    command = [sys.executable, "-m", "infoflow.inforidge.extract", "--checkpoints", folder, "--out", out,
               "--examples", path, "--sample", str(len(examples)), "--sample-seed", "0", "--batch-size",
               str(len(examples)), "--last-layer", "both", "--task", "gpu-check", "--method", "sft", "--seed", "0",
               "--threads", str(settings.threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    require(result.returncode == 0, f"extraction: exit status {result.returncode}: {lines[-1] if lines else 'no message'}")
    hidden = pq.read_table(out, columns=["hidden"]).column("hidden").combine_chunks().flatten().to_numpy()
    rows = pq.read_metadata(out).num_rows
    expected = len(examples) * (layers + 2)
    require(rows == expected, f"extraction: {rows} rows, expected {expected} (layers 0..L and L normed per example)")
    require(bool(np.isfinite(hidden).all()), "extraction: activations are not all finite")
    return rows


def run_checks(settings):
    """Run every check, printing the figures; raises CheckFailed (or the error met) at the first failure."""
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    tokenizer = train_tokenizer([" ".join(WORDS)])
    tokens_per_step = settings.batch * settings.length
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    for name in METHODS:
        model = build_model(settings.shape, tokenizer)
        if name == "sft":
            print(f"gpu-check: {device_name}, torch {torch.__version__}; {settings.shape} ({matmul_weights(model) / 1e6:.2f}M "
                  f"matmul weights) in {models.resolve_precision('auto')}; {settings.steps} steps of {settings.batch} x "
                  f"{settings.length} tokens per method", flush=True)
        losses, step_times, note = train_method(name, model, tokenizer, settings)
        tokens_per_second = tokens_per_step / statistics.median(step_times)
        peak = peak_bf16(device_name)
        mfu = f"MFU {flops_per_token(model, settings.length) * tokens_per_second / peak:.3f}" if peak else \
            f"MFU not computed (no data-sheet bf16 peak for {device_name})"
        print(f"gpu-check: {name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}, {tokens_per_second:,.0f} tokens/s, "
              f"{mfu}{note}", flush=True)
        if name == "sft":
            trained = model  # what is saved, loaded back, decoded and extracted from
        del model  # freed before the next method's model is built
    with tempfile.TemporaryDirectory() as work:
        folder = os.path.join(work, "model")
        loaded, loaded_tokenizer = check_checkpoint(trained, tokenizer, folder)
        print("gpu-check: checkpoint saved and loaded back: every weight equal", flush=True)
        starts = progressions(tokenizer, settings.batch, 8, seed=1)
        prompts = [tokenizer.decode(row[:-1]) for row in starts]
        continuations = greedy_generate(loaded, loaded_tokenizer, prompts, max_new_tokens=4, batch_size=settings.batch)
        require(len(continuations) == len(prompts), f"generation: {len(continuations)} continuations of {len(prompts)} prompts")
        print(f"gpu-check: greedy decoding of {len(prompts)} prompts, e.g. {prompts[0]!r} -> {continuations[0]!r}", flush=True)
        examples = [{"id": f"e{i}", "split": "test_id", "prompt": prompt, "answer": tokenizer.decode(row[-1:])}
                    for i, (prompt, row) in enumerate(zip(prompts, starts))]
        rows = check_extraction(folder, trained.config.num_hidden_layers, examples, settings, work)
        print(f"gpu-check: extraction of {len(examples)} examples: {rows} activation rows, all finite", flush=True)
    memory = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if torch.cuda.is_available() else "not measured on the CPU"
    print(f"gpu-check: peak GPU memory {memory}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--shape", choices=SHAPES, default="qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=30, help="training steps per method (>= 2: the loss must fall)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512, help="tokens per training example")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    settings = parser.parse_args()
    if settings.steps < 2:
        parser.error("--steps must be at least 2 (the loss must fall from the first step to the last)")
    if settings.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch first asks for a GPU; the extraction job inherits it
    elif not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (--device cpu --shape tiny runs the same checks on the CPU)", file=sys.stderr)
        sys.exit(2)
    cli.setup(settings.threads)
    try:
        run_checks(settings)
    except CheckFailed as e:
        print(f"gpu-check: FAIL ({e})")
        sys.exit(1)
    except Exception as e:  # an acceptance check reports any error (out of memory, a diverged loss) as a failure
        traceback.print_exc()
        print(f"gpu-check: FAIL ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no message'})")
        sys.exit(1)
    print("gpu-check: PASS")


if __name__ == "__main__":
    main()
