"""Every benchmark in one command, and BENCHMARKS.md's summary table rewritten from its figures.

Runs each script of benchmarks/ (with settings that keep the whole command under 10 minutes on
the project's 2-core CPU) and collects the headline figures each writes with --json; adds the
pipeline's figures: the wall time of the last recorded full run and the bound of any 2-core
schedule (benchmarks/pipeline_profile.py, from its jobs' Snakemake benchmark files), the time of a
no-op rerun, and which jobs a figure-only config change reruns (a dry run). The token-flux
benchmark needs a post-trained model of the default run and runs when there is one; the GPU
benchmark needs a CUDA device. The table between the markers in BENCHMARKS.md is replaced, and
so is the pipeline profile between its own markers; the notes around them are kept.

    python benchmarks/run_all.py            (make benchmarks)
"""

import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import headline
import pipeline_profile

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- benchmarks/run_all.py: start -->", "<!-- benchmarks/run_all.py: end -->"
# (script and arguments) in the order of BENCHMARKS.md.
SCRIPTS = [
    ["benchmarks/training_efficiency.py"],
    ["benchmarks/steering_overhead.py", "--steps", "60"],
    # The same at Qwen2.5-0.5B's layer width (2 layers, so it fits the CPU): the targets are for a real width.
    ["benchmarks/steering_overhead.py", "--steps", "30", "--hidden-size", "896", "--intermediate-size", "4864",
     "--layers", "2", "--heads", "14", "--kv-heads", "2"],
    ["benchmarks/extraction.py"],
    ["benchmarks/mi_speed.py"],
]
GPU_SCRIPT = ["benchmarks/gpu.py"]  # when there is a CUDA device
FLUX_SCRIPT = ["benchmarks/flux_overhead.py"]  # on the default run's first SFT model, when there is one
RUN_INDEX = REPO / "results/default/runs.csv"  # where the default run's models and their outputs are
# Rules whose outputs are figures (key_shift_report, depth_report and multitoken_report write their
# tables beside their figures), and the run's record (its merged config and provenance), which any
# config change rewrites.
FIGURE_RULES = {"accuracy_figure", "attention_figure", "surrogate_figure", "ridge_figures", "flux_figures",
                "key_shift_report", "depth_report", "multitoken_report", "run_config", "provenance", "all"}
PIPELINE_TARGET_MINUTES, NO_OP_TARGET_SECONDS = 15, 5


def run_script(arguments):
    """(headline rows, the command as typed, seconds) of one benchmark script."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.json"
        start = time.perf_counter()
        result = subprocess.run([sys.executable, *arguments, "--json", str(out)], cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        print(result.stdout, end="")
        if result.returncode != 0:
            raise SystemExit(f"{arguments[0]} failed:\n{result.stderr[-2000:]}")
        return json.loads(out.read_text()), "python " + " ".join(arguments), seconds


def run_folder(task, method, seed):
    """The folder of one post-training run of the default run (results/default/runs.csv), or None."""
    if not RUN_INDEX.exists():
        return None
    with RUN_INDEX.open(newline="") as f:
        return next((row["folder"] for row in csv.DictReader(f) if (row["task"], row["method"], row["seed"]) == (task, method, seed)), None)


def snakemake(*arguments):
    return pipeline_profile.snakemake(REPO, *arguments)


def pipeline_rows(profile):
    """The last recorded run's wall time and bound (`profile`), then the no-op rerun and a figure-only change."""
    rows = pipeline_profile.headline_rows(profile, PIPELINE_TARGET_MINUTES)
    if profile["wall_s"] is None:
        return rows
    start = time.perf_counter()
    rerun = snakemake()
    seconds = time.perf_counter() - start
    if "Nothing to be done" in rerun.stdout + rerun.stderr:
        rows.append(headline.row("no-op rerun of the complete default run (`snakemake --cores 2`)", f"{seconds:.1f} s",
                                 f"<= {NO_OP_TARGET_SECONDS} s", seconds <= NO_OP_TARGET_SECONDS))
    else:
        rows.append(headline.row("no-op rerun", "not measured: results/ is not complete", f"<= {NO_OP_TARGET_SECONDS} s"))
    with tempfile.TemporaryDirectory() as folder:  # config.yaml with one figure value changed
        changed = Path(folder) / "config.yaml"
        config = (REPO / "config.yaml").read_text()
        dpi = re.search(r"^  dpi: (\d+)", config, re.M)
        changed.write_text(config.replace(dpi.group(0), f"  dpi: {int(dpi.group(1)) + 1}"))
        dry = snakemake("-n", "--configfile", str(changed))
    if dry.returncode != 0:
        raise SystemExit(f"the dry run with a changed figures.dpi failed:\n{dry.stderr[-2000:]}")
    table = (dry.stdout + dry.stderr).split("Job stats:")[-1].split("\n\n")[0]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}
    jobs = ", ".join(f"{rule} {n}" for rule, n in counts.items())
    rows.append(headline.row("jobs rerun by a figure-only change (figures.dpi)", jobs or "none", "figure jobs only",
                             bool(counts) and set(counts) <= FIGURE_RULES))
    return rows


def machine():
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPU cores, {gpu}; torch {torch.__version__}, Python {platform.python_version()}"


def table(sections):
    lines = [START, "", f"Measured {datetime.date.today()} on: {machine()}. Command: `python benchmarks/run_all.py`.", "",
             "| figure | value | target | met | command |", "|---|---|---|---|---|"]
    for rows, command in sections:
        for r in rows:
            met = {True: "yes", False: "**no**", None: ""}[r["met"]]
            lines.append(f"| {r['figure']} | {r['value']} | {r['target']} | {met} | `{command}` |")
    return "\n".join([*lines, "", END])


def main():
    sections = []
    flux_model = run_folder("knowledge", "sft", "0")
    flux = [[*FLUX_SCRIPT, "--model", f"{flux_model}/model"]] if flux_model and (REPO / flux_model / "model").is_dir() else []
    for arguments in SCRIPTS + flux:
        rows, command, seconds = run_script(arguments)
        print(f"({command}: {seconds:.0f} s)")
        sections.append((rows, command))
    if torch.cuda.is_available():
        rows, command, seconds = run_script(GPU_SCRIPT)
        print(f"({command}: {seconds:.0f} s)")
        sections.append((rows, command))
    else:
        sections.append(([headline.row("GPU: SFT tokens/s and MFU of a Qwen2.5-0.5B shape in bf16, steering ratios, peak memory",
                                       "not measured: no CUDA device here", "MFU >= 0.35 on an H100")], "python " + GPU_SCRIPT[0]))
    profile = pipeline_profile.profile(REPO)  # before the no-op rerun, which would rewrite what it reruns
    sections.append((pipeline_rows(profile), "make reproduce; snakemake --cores 2; snakemake -n --configfile <config.yaml, dpi + 1>"))
    path = REPO / "BENCHMARKS.md"
    text = pipeline_profile.replace_block(path.read_text(), pipeline_profile.tables(profile))
    generated = table(sections)
    if START in text:
        text = text[: text.index(START)] + generated + text[text.index(END) + len(END):]
    else:  # first run: the table goes under the title
        title, _, rest = text.partition("\n\n")
        text = f"{title}\n\n{generated}\n\n{rest}"
    path.write_text(text)
    print(generated)
    print(pipeline_profile.tables(profile))


if __name__ == "__main__":
    main()
