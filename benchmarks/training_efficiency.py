"""SFT training throughput against the machine's matmul FLOP/s, and against a bare training loop.

Measured in one run, in alternating blocks so machine noise hits all sides alike:
- dense fp32 matmul FLOP/s (torch.mm, 2 m k n per product): a 1024 square and the model's own
  GEMMs at the SFT batch (MLP up-projection, output layer);
- SFT through the pipeline's training module (infoflow.training.trainer.train, the Hugging Face Trainer as
  finetune.py sets it up: PadCollator, linear schedule, logging every 5 steps) on the default base
  model shape (config.yaml base_model, built by infoflow.training.pretrain.build_model) with synthetic
  fixed-length batches, all labels on. A TrainerCallback stamps each optimizer step; the step time
  is from one on_step_end to the next, so data loading, collation and logging are in it (the
  on_step_begin -> on_step_end part alone is shown too);
- a bare loop on the same model shape and batches: forward, backward, clip to norm 1, fused AdamW
  (the Trainer's default optimizer) with the same settings and parameter groups, linear schedule,
  zero_grad.
Each block starts both sides from a fresh model of the same seed; the first --warmup steps of a
block are dropped and the figures are medians over all blocks. Run it on an otherwise idle
machine (the load average is printed): on busy cores a team of --threads > 1 waits for its
descheduled members at every operation, and step times grow several-fold.

N, the parameters of 6 N FLOPs per trained token (2 N forward, 4 N backward), are the weights of
every nn.Linear: attention projections, MLP and the output layer, whose weight is the tied input
embedding (counted once, as a matmul; the lookup and the norm gains do no matmul FLOPs). Attention
scores and values are not in 6 N; their line counts 2 x 2 x layers x length x hidden per token
forward (full length x length products, as computed under the causal mask), times 3 for
forward and backward.

    python benchmarks/training_efficiency.py [--steps 20] [--blocks 3] [--warmup 3] [--batch 32]
        [--length 24] [--vocab 3000] [--threads 2] [--json PATH]
"""

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from argparse import Namespace

import torch
import yaml
from torch.profiler import ProfilerActivity, profile
from transformers import TrainerCallback, get_linear_schedule_with_warmup

import headline
from infoflow.training import trainer
from infoflow.training.sft_data import PadCollator
from infoflow.training.pretrain import build_model

EFFICIENCY_TARGET, OVERHEAD_TARGET = 0.6, 0.95
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


class Vocabulary:
    """What build_model reads of a tokenizer."""

    pad_token_id, eos_token_id = 0, 1

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size


def synchronize():
    """Wait for the GPU's queued work, if there is a GPU: a time read after it includes that work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(TrainerCallback):
    def __init__(self):
        self.begins, self.ends = [], []

    def on_step_begin(self, args, state, control, **kwargs):
        self.begins.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        synchronize()
        self.ends.append(time.perf_counter())


def matmul_times(m, k, n, repeats, device="cpu", dtype=torch.float32):
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    torch.mm(a, b)  # untimed: first use of the shape
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def pipeline_steps(model, train_set, sft, warmup, steering=None):
    """(end-to-end step times, on_step_begin -> on_step_end times) of SFT through trainer.train,
    steered by `steering` (an active infoflow.infosteer.steer.Steering) if given."""
    args = Namespace(batch_size=sft["batch_size"], learning_rate=sft["learning_rate"], epochs=1,
                     warmup_steps=sft["warmup_steps"], weight_decay=sft["weight_decay"], seed=0,
                     gradient_accumulation_steps=1, gradient_checkpointing=False)
    timer = StepTimer()
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout keeps the table
        trainer.train(model, train_set, args, scheduler="linear", run_label="benchmark", collator=PadCollator(0),
                       logging_steps=5, steering=steering, callbacks=[timer])
    ends, begins = timer.ends, timer.begins
    return [ends[i] - ends[i - 1] for i in range(warmup, len(ends))], [e - b for e, b in zip(ends[warmup:], begins[warmup:])]


def bare_steps(model, batches, sft, warmup):
    model.train()
    groups = [{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": sft["weight_decay"]},
              {"params": [p for p in model.parameters() if p.ndim == 1], "weight_decay": 0.0}]  # norm gains, as the Trainer
    optimizer = torch.optim.AdamW(groups, lr=sft["learning_rate"], fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, sft["warmup_steps"], len(batches))
    times = []
    for batch in batches:
        start = time.perf_counter()
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times[warmup:]


def profile_hint(model, batches, sft):
    """Share of a few bare steps' self CPU time in matmul kernels, and the top operations."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        bare_steps(model, batches, sft, 0)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    share = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS) / total
    print(f"\nprofile of {len(batches)} bare steps: {share:.0%} of self CPU time in matmul kernels ({', '.join(MATMUL_OPS)})")
    print(events.table(sort_by="self_cpu_time_total", row_limit=10))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side and block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each block (>= 1)")
    parser.add_argument("--matmul-repeats", type=int, default=10, help="products per shape and block")
    parser.add_argument("--batch", type=int, help="default: config.yaml sft batch_size")
    parser.add_argument("--length", type=int, default=24, help="tokens per example (knowledge prompt + answer)")
    parser.add_argument("--vocab", type=int, default=3000, help="vocabulary size (word-level)")
    parser.add_argument("--threads", type=int, default=2)
    headline.add_argument(parser)
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (a step's time starts at the previous step's end)")
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    config = yaml.safe_load(open(args.config))
    shape, sft = config["base_model"], {**config["sft"], **({"batch_size": args.batch} if args.batch else {})}
    batch, length, hidden = sft["batch_size"], args.length, shape["hidden_size"]

    def fresh_model():
        torch.manual_seed(0)
        return build_model(Vocabulary(args.vocab), shape["architecture"], hidden, shape["intermediate_size"],
                           shape["layers"], shape["heads"], shape["block_size"])

    ids = torch.randint(0, args.vocab, (batch * (args.warmup + args.steps), length), generator=torch.Generator().manual_seed(0))
    train_set = [{"input_ids": row, "labels": row} for row in ids.tolist()]
    batches = [PadCollator(0)(train_set[i:i + batch]) for i in range(0, len(train_set), batch)]
    gemms = {"1024 x 1024 x 1024": (1024, 1024, 1024),
             f"MLP up {batch * length} x {hidden} x {shape['intermediate_size']}": (batch * length, hidden, shape["intermediate_size"]),
             f"output layer {batch * length} x {hidden} x {args.vocab}": (batch * length, hidden, args.vocab)}
    matmul = {name: [] for name in gemms}
    pipeline, pipeline_inner, bare = [], [], []
    for block in range(args.blocks):
        for name, (m, k, n) in gemms.items():
            matmul[name] += matmul_times(m, k, n, args.matmul_repeats)
        for side in (["pipeline", "bare"] if block % 2 == 0 else ["bare", "pipeline"]):
            if side == "pipeline":
                outer, inner = pipeline_steps(fresh_model(), train_set, sft, args.warmup)
                pipeline += outer
                pipeline_inner += inner
            else:
                bare += bare_steps(fresh_model(), batches, sft, args.warmup)

    model = fresh_model()
    n_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    tokens = batch * length
    flops = {name: 2 * m * k * n / statistics.median(matmul[name]) for name, (m, k, n) in gemms.items()}
    peak = flops["1024 x 1024 x 1024"]
    pipeline_rate, bare_rate = tokens / statistics.median(pipeline), tokens / statistics.median(bare)
    achieved = 6 * n_weights * pipeline_rate
    attention = 12 * shape["layers"] * length * hidden * pipeline_rate
    efficiency, overhead = achieved / peak, pipeline_rate / bare_rate
    rows = [
        *(headline.row(f"matmul GFLOP/s, {name}", f"{flops[name] / 1e9:.1f}") for name in gemms),
        headline.row("pipeline step, median ms (on_step_end to on_step_end)", f"{1000 * statistics.median(pipeline):.1f}"),
        headline.row("pipeline step, median ms (on_step_begin to on_step_end)", f"{1000 * statistics.median(pipeline_inner):.1f}"),
        headline.row("bare-loop step, median ms", f"{1000 * statistics.median(bare):.1f}"),
        headline.row("pipeline tokens/s", f"{pipeline_rate:.0f}"),
        headline.row("achieved training GFLOP/s of SFT, 6 N tokens/s", f"{achieved / 1e9:.2f}"),
        headline.row("attention scores and values GFLOP/s (not in 6 N)", f"{attention / 1e9:.2f}"),
        headline.row("efficiency: 6 N FLOP/s / 1024-square matmul FLOP/s", f"{efficiency:.3f}", f">= {EFFICIENCY_TARGET}",
                     efficiency >= EFFICIENCY_TARGET),
        headline.row("Trainer overhead: pipeline / bare-loop tokens/s", f"{overhead:.3f}", f">= {OVERHEAD_TARGET}",
                     overhead >= OVERHEAD_TARGET),
    ]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at the start, "
          f"torch {torch.__version__}, {args.threads} threads")
    print(f"model: base shape of {args.config}, vocabulary {args.vocab}, N = {n_weights / 1e6:.3f}M matmul weights "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.3f}M parameters); batch {batch} x {length} tokens; "
          f"{args.blocks} blocks of {args.warmup} + {args.steps} steps per side, alternating")
    headline.print_table(rows)
    headline.write(args.json, rows)
    if efficiency < EFFICIENCY_TARGET:
        profile_hint(model, batches[:3], sft)


if __name__ == "__main__":
    main()
