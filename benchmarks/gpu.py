"""GPU figures: SFT throughput and MFU of a Qwen2.5-0.5B-shaped model in bf16, InfoSteer's step-time
ratios to SFT, and each run's peak GPU memory, all through the pipeline's own training path.

The model is built from the Qwen2.5-0.5B configuration (random weights: no download) in the
precision the pipeline trains in on a GPU (infoflow.training.models.resolve_precision: bf16-mixed,
fp32 weights under bf16 autocast, where bf16 is supported) and trained by
infoflow.training.trainer.train (the Hugging Face Trainer), plain or under
infoflow.infosteer.steer as finetune.py runs it. Methods alternate in blocks of --warmup + --steps optimizer
steps, timed as training_efficiency.py times SFT (a TrainerCallback stamps every step's end after
the device has finished it), and the figures are medians of the step times after each block's
warmup.

MFU is model FLOP/s over the device's peak dense bf16 FLOP/s (the vendor's figure, from PEAK_BF16
in infoflow.posttrain.gpu_check, which holds the shapes and the FLOP count too; none for other
devices). Model FLOPs per trained token: 6 N + 12 L T d (PaLM's count, appendix B): N the weights
of every nn.Linear, the tied output layer included once; the second term the attention scores and
values of L layers at sequence length T and width d, counted in full although a causal kernel skips
the masked half. The same FLOP/s over a bf16 matmul measured in this run
is shown too.

    python benchmarks/gpu.py [--steps 30] [--warmup 5] [--blocks 2] [--batch 8] [--length 1024] [--json PATH]
    python benchmarks/gpu.py --device cpu --shape tiny --steps 2 --warmup 1 --blocks 1 --batch 2 --length 8
        (the same code on the CPU with a tiny model: how the tests check it)
"""

import argparse
import contextlib
import gc
import statistics

import torch
from transformers import AutoConfig, AutoModelForCausalLM

import headline
from infoflow.training import models
from infoflow.infosteer.steer import steer
# One copy of the model shapes, peak figures and FLOP count, shared with the GPU acceptance check.
from infoflow.posttrain.gpu_check import SHAPES, flops_per_token, matmul_weights, peak_bf16
from steering_overhead import METHODS, TARGETS
from training_efficiency import matmul_times, pipeline_steps

MFU_TARGET = 0.35  # issue 10, on an H100
MATMUL_SIZE = {"cuda": 8192, "cpu": 512}


def matmul_flops(device, dtype, repeats=20):
    """FLOP/s of a square matmul in the training dtype, median of `repeats`."""
    n = MATMUL_SIZE[device]
    return 2 * n**3 / statistics.median(matmul_times(n, n, n, repeats, device, dtype))


def train_block(model, train_set, batch, spec, warmup):
    """(step times after warmup, peak device memory in bytes or None) of one run of training.train."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    settings = {"batch_size": batch, "learning_rate": 1e-5, "warmup_steps": 0, "weight_decay": 0.0}
    with contextlib.ExitStack() as stack:
        steering = stack.enter_context(steer(model, spec[0], **spec[1])) if spec else None
        step_times, _ = pipeline_steps(model, train_set, settings, warmup, steering)
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return step_times, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--shape", choices=SHAPES, default="qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per method and block")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of each block (>= 1)")
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=1024, help="tokens per example")
    headline.add_argument(parser)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here (--device cpu --shape tiny runs the same code on the CPU)")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (a step's time starts at the previous step's end)")
    # Weights in the dtype the pipeline trains in (fp32 masters under bf16-mixed on a GPU); the
    # matmuls run in the compute dtype autocast gives them.
    precision, dtype = models.resolve_precision("auto"), models.resolve_dtype("auto")
    config = AutoConfig.for_model("qwen2", **SHAPES[args.shape])
    torch.manual_seed(0)
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(config, dtype=models.training_dtype(precision))
    ids = torch.randint(0, config.vocab_size, (args.batch * (args.warmup + args.steps), args.length),
                        generator=torch.Generator().manual_seed(0))
    train_set = [{"input_ids": row, "labels": row} for row in ids.tolist()]

    times = {name: [] for name in METHODS}
    peaks = {name: [] for name in METHODS}
    for block in range(args.blocks):
        order = list(METHODS) if block % 2 == 0 else list(METHODS)[::-1]
        for name in order:
            step_times, peak = train_block(model, train_set, args.batch, METHODS[name], args.warmup)
            times[name] += step_times
            peaks[name].append(peak)

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    peak = peak_bf16(device_name)
    matmul = matmul_flops(args.device, dtype)
    n_weights = matmul_weights(model)
    sft = statistics.median(times["sft"])
    tokens_per_second = args.batch * args.length / sft
    achieved = flops_per_token(model, args.length) * tokens_per_second
    label = f"{args.shape} ({n_weights / 1e6:.2f}M matmul weights) in {precision}, {args.batch} x {args.length} tokens"
    rows = [
        headline.row(f"GPU: SFT step, median ms ({label})", f"{1000 * sft:.1f}"),
        headline.row("GPU: SFT tokens/s", f"{tokens_per_second:,.0f}"),
        headline.row("GPU: model TFLOP/s of SFT (6 N + 12 L T d per token)", f"{achieved / 1e12:.1f}"),
        headline.row(f"GPU: {MATMUL_SIZE[args.device]}-square matmul TFLOP/s", f"{matmul / 1e12:.1f}"),
        headline.row("GPU: model FLOP/s / measured matmul FLOP/s", f"{achieved / matmul:.3f}"),
        # Stamped by a TrainerCallback at the end of each optimizer step: the runs trained for real.
        headline.row("GPU: timed optimizer steps per method (" + ", ".join(METHODS) + ")",
                     ", ".join(str(len(times[name])) for name in METHODS)),
    ]
    if peak is None:
        rows.append(headline.row(f"GPU: MFU on {device_name}", "not computed: no peak bf16 figure for this device",
                                 f">= {MFU_TARGET} on an H100"))
    else:
        mfu = achieved / peak
        rows.append(headline.row(f"GPU: MFU on {device_name} (peak {peak / 1e12:.0f} TFLOP/s bf16 dense)", f"{mfu:.3f}",
                                 f">= {MFU_TARGET} on an H100", mfu >= MFU_TARGET))
    for name, target in TARGETS.items():
        ratio = statistics.median(times[name]) / sft
        rows.append(headline.row(f"GPU: steering overhead, {name} step / SFT step", f"{ratio:.3f}", f"<= {target}",
                                 ratio <= target))
    for name in METHODS:
        value = "not measured on the CPU" if peaks[name][0] is None else f"{max(peaks[name]) / 2**30:.1f} GiB"
        rows.append(headline.row(f"GPU: peak memory of a training run, {name}", value))

    print(f"device: {device_name}; torch {torch.__version__}; {args.blocks} blocks of {args.warmup} + {args.steps} "
          f"steps per method, alternating")
    headline.print_table(rows)
    headline.write(args.json, rows)


if __name__ == "__main__":
    main()
