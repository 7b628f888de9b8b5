"""Wall time of infoflow.inforidge.mi.mutual_information_layers: I(Z_l; Y) for 12 layers of width 768, N examples.

For each N the function runs several times on random data (12 layers and a target, each [N, 768]);
the table gives the median and min-max wall time, and the median CPU time of the process (all
threads), which other processes on the machine disturb less. At the reference sizes a plain
per-layer implementation (torch Gram matrices of Z_l, Y and the joint, three float64 eigvalsh
calls per layer, torch's threads as set) runs interleaved with it; the last column is its median
over the function's. The load average before and after is printed: this machine is shared and
noisy. When other processes hold the cores, the reference's multi-threaded eigvalsh calls can
stall for seconds each, so the reference stops once it has run REFERENCE_BUDGET seconds at one N
(a row with 0 runs: not one run finished in time).

At the torch sizes the function's torch path (`device=`: torch's Grams and torch.linalg.eigvalsh,
layer by layer) runs interleaved with it too, on the CPU (single-threaded) and on a CUDA device
when there is one; the GPU's figure is its wall time, synchronised by the copy of the result.

    python benchmarks/mi_speed.py [--sizes 200 500 1000 2000] [--reference-sizes 200 1000]
        [--torch-sizes 1000] [--repeats 5] [--threads 2]
"""

import argparse
import os
import platform
import statistics
import time
from functools import partial

import torch

import headline
from infoflow.inforidge.mi import mutual_information_layers

LAYERS, WIDTH = 12, 768
TARGET_SECONDS = {200: 0.15, 1000: 1.0}
LARGE, LARGE_REPEATS = 2000, 2  # fewer repetitions from this N keep the run under 3 minutes
REFERENCE_BUDGET = 30
REFERENCE_N, REFERENCE_TARGET = 1000, 2.0  # the batched function must be this much faster there
BATCHED, REFERENCE = "mutual_information_layers", "per-layer reference"


def reference(xs, y, deadline, sigma=1.0):
    """Per-layer gaussian I(Z_l; Y), written plainly; raises TimeoutError once past deadline (perf_counter)."""

    def gram(x):
        u = torch.nn.functional.normalize(x.double(), dim=-1)
        k = torch.exp(-(2 - 2 * u @ u.T).clamp(min=0) / (2 * sigma**2))
        return k / k.trace()

    def entropy(k):
        eigenvalues = torch.linalg.eigvalsh(k).clamp(min=0)
        eigenvalues = eigenvalues / eigenvalues.sum()
        return -torch.special.xlogy(eigenvalues, eigenvalues).sum()

    information = []
    for x in xs:
        if time.perf_counter() > deadline:
            raise TimeoutError
        kx, ky = gram(x), gram(y)
        joint = kx * ky / (kx * ky).trace()
        information.append(entropy(kx) + entropy(ky) - entropy(joint))
    return torch.stack(information).numpy()


def timed(function, *args):
    """(wall seconds, CPU seconds, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def row(n, name, runs, target="", ratio=""):
    if not runs:
        return f"| {n} | {name} | 0 | > {REFERENCE_BUDGET} |  |  | {target} | {ratio} |"
    walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
    spread = f"{min(walls):.3f}-{max(walls):.3f}"
    return (f"| {n} | {name} | {len(runs)} | {statistics.median(walls):.3f} | {spread} | "
            f"{statistics.median(cpus):.3f} | {target} | {ratio} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000, 2000])
    parser.add_argument("--reference-sizes", type=int, nargs="*", default=[200, 1000])
    parser.add_argument("--torch-sizes", type=int, nargs="*", default=[1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    headline.add_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"{args.threads} threads; load average before {os.getloadavg()[0]:.1f}")
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    for device in [None, *devices]:  # warm-up (CUDA's context and kernels)
        mutual_information_layers(torch.randn(LAYERS, 50, WIDTH), torch.randn(50, WIDTH), device=device)
    rows, figures = [], []
    for n in args.sizes:
        generator = torch.Generator().manual_seed(n)
        xs, y = torch.randn(LAYERS, n, WIDTH, generator=generator), torch.randn(n, WIDTH, generator=generator)
        batched, references, difference = [], [], None
        torch_runs = {device: [] for device in devices} if n in args.torch_sizes else {}
        torch_differences = {}
        budget = REFERENCE_BUDGET if n in args.reference_sizes else 0
        for _ in range(args.repeats if n < LARGE else LARGE_REPEATS):
            *seconds, information = timed(mutual_information_layers, xs, y)
            batched.append(seconds)
            for device, runs in torch_runs.items():
                *seconds, on_device = timed(partial(mutual_information_layers, device=device), xs, y)
                runs.append(seconds)
                torch_differences[device] = abs(on_device - information).max()
            if budget > 0:
                start = time.perf_counter()
                try:
                    *seconds, expected = timed(reference, xs, y, start + budget)
                except TimeoutError:
                    budget = 0
                    continue
                budget -= time.perf_counter() - start
                references.append(seconds)
                difference = abs(expected - information).max()
        if difference is not None:
            print(f"N={n}: max |batched - reference| = {difference:.1e} nats")
        for device, torch_difference in torch_differences.items():
            print(f"N={n}: max |torch path on {device} - numpy path| = {torch_difference:.1e} nats")
        median = statistics.median(wall for wall, _ in batched)
        rows.append(row(n, BATCHED, batched, target=TARGET_SECONDS.get(n, "")))
        target = TARGET_SECONDS.get(n)
        figures.append(headline.row(f"MI of {LAYERS} layers (d={WIDTH}) at N={n}, median wall s", f"{median:.3f}",
                                    f"<= {target}" if target else "", median <= target if target else None))
        for device, runs in torch_runs.items():
            name = f"torch path, eigvalsh on {device}"
            torch_median = statistics.median(wall for wall, _ in runs)
            rows.append(row(n, name, runs, ratio=f"{torch_median / median:.2f}"))
            figures.append(headline.row(f"MI of {LAYERS} layers (d={WIDTH}) at N={n}, {name}, median wall s", f"{torch_median:.3f}"))
        if n in args.reference_sizes:
            ratio = f"{statistics.median(wall for wall, _ in references) / median:.2f}" if references else ""
            rows.append(row(n, REFERENCE, references, ratio=ratio))
            if n == REFERENCE_N and references:
                figures.append(headline.row(f"MI speed-up over a per-layer reference at N={n}", ratio, f">= {REFERENCE_TARGET}",
                                            float(ratio) >= REFERENCE_TARGET))
    print(f"load average after {os.getloadavg()[0]:.1f}; {LAYERS} layers of width {WIDTH}, gaussian kernel, alpha 1")
    print("| N | implementation | runs | median wall (s) | min-max wall (s) | median CPU (s) | target (s) | "
          "other / batched |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    headline.write(args.json, figures)


if __name__ == "__main__":
    main()
