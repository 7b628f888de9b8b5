"""The GPU acceptance check's code, run on the CPU with a tiny model (no test needs a GPU)."""

import re

import pytest
import torch

from conftest import run_module

CPU = ("--device", "cpu", "--shape", "tiny", "--steps", "3", "--batch", "2", "--length", "16", "--threads", "1")


def test_the_check_passes_on_the_cpu():
    result = run_module("posttrain.gpu_check", *CPU)
    lines = result.stdout.splitlines()
    assert lines[-1] == "gpu-check: PASS"
    for method in ("sft", "intervention", "regularization"):
        assert any(line.startswith(f"gpu-check: {method}: loss ") and "tokens/s" in line for line in lines)
    assert any("changes the logits by up to" in line for line in lines)  # the intervention's hooks ran
    assert any("key entropy" in line for line in lines)  # the regulariser's term was logged
    assert "gpu-check: checkpoint saved and loaded back: every weight equal" in lines
    assert any(line.startswith("gpu-check: extraction of 2 examples: 8 activation rows") for line in lines)
    # Each method trained through training.train: the Trainer logged all three steps of each.
    assert result.stderr.count("step 3/3 (100%)") == 3


def test_a_failed_check_says_why_and_exits_1():
    # A learning rate of 1e30 makes the weights overflow within the three steps: the loss turns NaN.
    result = run_module("posttrain.gpu_check", *CPU, "--learning-rate", "1e30", check=False)
    assert result.returncode == 1
    last = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"gpu-check: FAIL \(NonFiniteLoss: gpu-check/sft: training loss is (nan|inf) at step \d .*\)", last), last


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a CUDA device")
def test_without_a_device_it_says_so_and_exits_2():
    result = run_module("posttrain.gpu_check", check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["gpu-check: no CUDA device here (--device cpu --shape tiny runs the same checks on the CPU)"]
