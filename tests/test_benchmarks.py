"""The GPU benchmark's code, run on the CPU with a tiny model (no test needs a GPU)."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu  # noqa: E402  (benchmarks/ is not a package)


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
