"""A training job killed at any point resumes from its last checkpoint and ends as if never killed;
a diverged loss stops training with one line and no model."""

import json
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from conftest import REPO, run_module


def finetune_args(world, model_dir, out, **extra):
    args = {"--model": model_dir, "--train": world["paths"]["k_train"], "--method": "regularization",
            "--method-params": "lam=0.01", "--learning-rate": 1e-3, "--epochs": 20, "--batch-size": 4,
            "--warmup-steps": 0, "--weight-decay": 0.0, "--seed": 0, "--threads": 1, "--checkpoints": 4,
            "--checkpoint-dir": out / "checkpoints", "--out": out / "model", "--history": out / "history.json", **extra}
    return [str(token) for item in args.items() for token in item]


def kill_after_checkpoint(args, resume_dir, step):
    """Start a training job and SIGKILL it as soon as its resume checkpoint at `step` is complete."""
    job = subprocess.Popen([sys.executable, "-m", "infoflow.posttrain.finetune", *args], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = resume_dir / f"checkpoint-{step}" / "complete"
    deadline = time.monotonic() + 300
    while not marker.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the job ended before it could be killed"


def weights(folder):
    return load_file(folder / "model.safetensors")


def test_killed_twice_then_resumed_ends_like_an_uninterrupted_run(tiny_world, tiny_model_dir, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_module("posttrain.finetune", *finetune_args(tiny_world, tiny_model_dir, whole))
    resume_dir = killed / "resume"
    args = finetune_args(tiny_world, tiny_model_dir, killed, **{"--resume-dir": resume_dir, "--resume-every": 5})
    for step in (10, 60):  # early in the first epochs, and past the second InfoRidge checkpoint
        kill_after_checkpoint(args, resume_dir, step)
        assert not (killed / "model").exists() and not (killed / "checkpoints").exists()
    run_module("posttrain.finetune", *args)

    assert json.loads((killed / "history.json").read_text()) == json.loads((whole / "history.json").read_text())
    for folder in ["model", *(f"checkpoints/point{p:02d}" for p in range(5))]:
        expected, got = weights(whole / folder), weights(killed / folder)
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected), folder
    assert not resume_dir.exists() and not list((killed / "checkpoints").glob(".*"))


def test_checkpoints_of_other_settings_are_not_resumed(tiny_world, tiny_model_dir, tmp_path):
    resume_dir = tmp_path / "resume"
    args = finetune_args(tiny_world, tiny_model_dir, tmp_path, **{"--resume-dir": resume_dir, "--resume-every": 5})
    kill_after_checkpoint(args, resume_dir, 10)
    args[args.index("--learning-rate") + 1] = "2e-3"
    fresh = tmp_path / "fresh"
    run_module("posttrain.finetune", *args)
    run_module("posttrain.finetune", *finetune_args(tiny_world, tiny_model_dir, fresh, **{"--learning-rate": 2e-3}))
    assert json.loads((tmp_path / "history.json").read_text()) == json.loads((fresh / "history.json").read_text())


def test_non_finite_loss_stops_at_its_step_without_a_model(tiny_world, tiny_model_dir, tmp_path):
    # With a learning rate of 1e30 the weights overflow after two updates: step 3's loss is NaN.
    args = finetune_args(tiny_world, tiny_model_dir, tmp_path, **{"--learning-rate": 1e30})
    result = run_module("posttrain.finetune", *args, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("infoflow: regularization lam=0.01 seed=0: training loss is nan at step 3 (last finite loss ")
    assert not (tmp_path / "model").exists() and not (tmp_path / "history.json").exists()
