"""The benchmarks' code: the GPU benchmark run on the CPU with a tiny model (no test needs a GPU), and the
pipeline profile of a tiny workflow run for real."""

import json
import os
import random
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu  # noqa: E402  (benchmarks/ is not a package)
import pipeline_profile  # noqa: E402


def test_gpu_benchmark_runs_the_pipeline_training_on_a_tiny_model(tmp_path):
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--shape", "tiny", "--steps", "2", "--warmup", "1",
         "--blocks", "2", "--batch", "2", "--length", "8", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["figure"].split(" (")[0]: r for r in json.loads(out.read_text())}
    assert float(rows["GPU: SFT tokens/s"]["value"].replace(",", "")) > 0
    for method in ("intervention", "regularization"):
        ratio = next(r for figure, r in rows.items() if figure.startswith(f"GPU: steering overhead, {method}"))
        # A ratio of step times, not checked for size: the test runs beside others (BENCHMARKS.md has the figures).
        assert float(ratio["value"]) > 0 and ratio["met"] in (True, False)
    assert rows["GPU: MFU on cpu"]["value"].startswith("not computed")
    # Each method trained for real, through training.train: 2 blocks x 2 timed steps of each, as the
    # Trainer's step-end callback stamped them.
    assert rows["GPU: timed optimizer steps per method"]["value"] == "4, 4, 4"


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a CUDA device")
def test_gpu_benchmark_without_a_device_says_so():
    result = subprocess.run([sys.executable, "benchmarks/gpu.py"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no CUDA device here" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
                                        ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("Tesla T4", None)])
def test_peak_figures_by_device_name(name, peak):
    assert gpu.peak_bf16(name) == peak


# A tiny workflow with a known DAG: seed -> grow x, grow y -> merge, and an independent side job.
PROFILE_SNAKEFILE = textwrap.dedent("""
    rule all:
        input: "merged.txt", "side.txt", "note.txt"

    rule make_seed:
        output: "seed.txt"
        benchmark: "bench/make_seed.tsv"
        shell: "echo seed > {output}"

    rule grow:
        input: "seed.txt"
        output: "grow/{name}.txt"
        benchmark: "bench/grow_{name}.tsv"
        shell: "cat {input} > {output}"

    rule merge:
        input: "grow/x.txt", "grow/y.txt"
        output: "merged.txt"
        benchmark: "bench/merge.tsv"
        shell: "cat {input} > {output}"

    rule side:
        output: "side.txt"
        threads: 2
        benchmark: "bench/side.tsv"
        shell: "echo side > {output}"

    rule note:
        output: "note.txt"
        benchmark: "bench/note.tsv"
        shell: "echo note > {output}"
""")
# (seconds, end) each job is given: Snakemake's own timings of these instant jobs are noise, so the
# benchmark files it wrote get these durations and ends, and the profile is checked by hand.
PROFILE_TIMES = {"make_seed": (2.0, 1002.0), "grow_x": (1.0, 1003.0), "grow_y": (5.0, 1007.0), "merge": (3.0, 1010.0),
                 "side": (8.0, 1008.0), "note": (0.1, 1001.0)}


def test_pipeline_profile_of_a_tiny_workflow_run_for_real(tmp_path):
    (tmp_path / "Snakefile").write_text(PROFILE_SNAKEFILE)
    run = pipeline_profile.snakemake(tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert pipeline_profile.profile(tmp_path)["timed_jobs"] == 6  # Snakemake's own benchmark files, as written
    for name, (seconds, end) in PROFILE_TIMES.items():
        path = tmp_path / f"bench/{name}.tsv"
        header, row = path.read_text().splitlines()[:2]
        path.write_text(f"{header}\n{seconds}\t{row.split(chr(9), 1)[1]}\n")
        os.utime(path, (end, end))
    # The dependencies read off the dry run are Snakemake's own edges: --d3dag's, compared by the
    # rules they join (its job ids come from another invocation).
    jobs = pipeline_profile.dry_run_jobs(pipeline_profile.snakemake(tmp_path, "-n", "--forceall").stdout)
    d3dag = json.loads(pipeline_profile.snakemake(tmp_path, "--forceall", "--d3dag").stdout)
    rule_of = {n["id"]: n["value"]["rule"] for n in d3dag["nodes"]}
    rule_of_job = {job.jobid: job.rule for job in jobs}
    edges = Counter((rule_of_job[d], rule_of_job[j]) for j, ds in pipeline_profile.dependencies(jobs).items() for d in ds)
    assert edges == Counter((rule_of[e["u"]], rule_of[e["v"]]) for e in d3dag["edges"])
    assert edges[("make_seed", "grow")] == edges[("grow", "merge")] == 2 and sum(edges.values()) == 7
    p = pipeline_profile.profile(tmp_path)
    assert (p["jobs"], p["timed_jobs"]) == (7, 6)  # rule all has no benchmark file
    assert p["job_s"] == pytest.approx(19.1) and p["core_s"] == pytest.approx(27.1)  # side holds 2 threads
    # The run: make_seed starts at 1000 (its end 1002 minus 2 s), merge ends last at 1010.
    assert p["wall_s"] == 10.0
    assert p["rules"] == [("side", 1, 8.0), ("grow", 2, 6.0), ("merge", 1, 3.0), ("make_seed", 1, 2.0), ("note", 1, 0.1)]
    assert p["top_jobs"][:2] == [("side (bench/side.tsv)", 8.0), ("grow (name=y)", 5.0)]
    assert len(p["top_jobs"]) == 5
    # Chains: make_seed -> grow y -> merge = 2 + 5 + 3 = 10 s; through grow x 6 s; side alone 8 s.
    assert p["critical_path_s"] == 10.0
    assert p["critical_path"] == [("make_seed", 2.0), ("grow", 5.0), ("merge", 3.0)]
    assert p["bound_s"] == 10.0  # max(10, 19.1 / 2)
    rows = {r["figure"].split(" (")[0]: r for r in pipeline_profile.headline_rows(p, target_minutes=15)}
    assert rows["lower bound of its wall time on 2 cores: max(critical path, job-seconds / 2)"]["value"] == "0.2 min"
    markdown = pipeline_profile.tables(p)
    assert "| grow | 2 | 6 | 3.0 |" in markdown
    assert "| other rules: note | 1 | 0 | |" in markdown  # under 1% of the job-seconds
    assert "make_seed 2.0 s -> grow 5.0 s -> merge 3.0 s." in markdown
    # The block goes between its markers, and a second write replaces it.
    once = pipeline_profile.replace_block("# Benchmarks\n\nnotes\n", markdown)
    assert pipeline_profile.replace_block(once, "new") == "# Benchmarks\n\nnotes\n\n" + f"{pipeline_profile.START}\n\nnew\n\n{pipeline_profile.END}\n"


def test_pipeline_profile_critical_path_is_the_longest_of_all_chains_by_brute_force():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(1, 9)
        jobs = [pipeline_profile.Job(jobid=j, rule=f"r{j}", seconds=float(rng.randint(0, 20))) for j in range(n)]
        depends_on = {j: {i for i in range(j) if rng.random() < 0.4} for j in range(n)}

        def chains(j):  # every chain of dependent jobs that ends with job j
            return [[j]] + [chain + [j] for i in depends_on[j] for chain in chains(i)]

        longest = max(sum(jobs[j].seconds for j in chain) for j in range(n) for chain in chains(j))
        seconds, path = pipeline_profile.critical_path(jobs, depends_on)
        assert seconds == longest == sum(job.seconds for job in path)
        assert all(a.jobid in depends_on[b.jobid] for a, b in zip(path, path[1:]))


def run_benchmark(tmp_path, script, *arguments):
    """The headline rows of one benchmark script, run for real with the given (tiny) settings."""
    out = tmp_path / "figures.json"
    result = subprocess.run([sys.executable, script, *arguments, "--json", str(out)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, {r["figure"]: r for r in json.loads(out.read_text())}


def test_steering_overhead_benchmark_at_another_shape_names_it_in_its_figures(tmp_path):
    _, rows = run_benchmark(tmp_path, "benchmarks/steering_overhead.py", "--steps", "2", "--warmup", "1", "--batch", "2",
                            "--hidden-size", "32", "--intermediate-size", "96", "--layers", "2", "--heads", "4", "--kv-heads", "2")
    ratios = [r for figure, r in rows.items() if "hidden 32, intermediate 96, 2 layers" in figure]
    assert len(ratios) == len(rows) == 4  # intervention, regularisation and the two floors
    assert all(float(r["value"]) > 0 for r in ratios) and [r["target"] for r in ratios[:2]] == ["<= 1.02", "<= 1.05"]


def test_mi_benchmark_reports_the_torch_path_beside_the_numpy_path(tmp_path):
    stdout, rows = run_benchmark(tmp_path, "benchmarks/mi_speed.py", "--sizes", "40", "--reference-sizes", "--torch-sizes", "40",
                                 "--repeats", "1")
    assert float(rows["MI of 12 layers (d=768) at N=40, median wall s"]["value"]) > 0
    assert float(rows["MI of 12 layers (d=768) at N=40, torch path, eigvalsh on cpu, median wall s"]["value"]) > 0
    difference = float(stdout.split("max |torch path on cpu - numpy path| = ")[1].split()[0])
    assert difference <= 1e-10
