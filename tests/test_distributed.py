"""Post-training on 2 CPU processes (gloo) started by torchrun, as a job with sft.devices_per_job: 2 is:
DDP and FSDP runs of SFT, the intervention and the regulariser give the loss history, key entropy and
weights of one process with the same global batch, rank 0 writes plain model folders, and a killed
FSDP job resumes from its checkpoint.

Starting the Python stack costs a process about 5 s here, so each launch runs its three methods one
after another through finetune.main (this file's __main__); the killed and resumed job runs
`python -m infoflow.posttrain.finetune` under torchrun itself, as the workflow's finetune rule does.
"""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import REPO
from infoflow.cli import StageFailure
from infoflow.config import ConfigError, check
from infoflow.training import distributed, models

TORCHRUN = Path(sys.executable).parent / "torchrun"
METHODS = {"sft": [], "intervention": ["--method-params", "p=0.2", "alpha=3.0"],
           "regularization": ["--method-params", "lam=0.1"]}
# Two processes sum in another order than one: float32 rounding, which AdamW's normalised steps make
# larger in the weights (measured: losses within 8e-7, key entropies (about 7) within 9e-6, weights
# within 2e-5; the regulariser normalised per process, not over the whole batch, is off by 2e-4 in
# the loss and 7e-3 in the weights).
TOLERANCE = {"loss": 1e-5, "key_entropy": 5e-5, "weights": 1e-4}
# The same global batch of 4: one process of 4, two of 1 with 2 accumulation steps (DDP), two of 2
# (FSDP, recomputing activations in the backward pass as the paper presets do).
LAYOUTS = {"one": (1, [], 4, 1), "ddp": (2, [], 1, 2), "fsdp": (2, ["--sharding", "fsdp", "--gradient-checkpointing"], 2, 1)}


def finetune_args(world, model_dir, out, method, sharding, batch_size, accumulation, **extra):
    args = {"--model": model_dir, "--train": world["paths"]["k_train"], "--method": method, "--learning-rate": 1e-3,
            "--epochs": 3, "--batch-size": batch_size, "--gradient-accumulation-steps": accumulation,
            "--warmup-steps": 0, "--weight-decay": 0.0, "--seed": 0, "--threads": 1, "--checkpoints": 2,
            "--checkpoint-dir": out / "checkpoints", "--out": out / "model", "--history": out / "history.json", **extra}
    return [str(token) for item in args.items() for token in item] + METHODS[method] + sharding


def launcher(processes):
    return [str(TORCHRUN), "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]


def launch(layout, world, model_dir, folder):
    """Run the three methods in `layout` (one launch); return {method: its output folder}."""
    processes, sharding, batch_size, accumulation = LAYOUTS[layout]
    outs = {method: folder / layout / method for method in METHODS}
    runs = [finetune_args(world, model_dir, out, method, sharding, batch_size, accumulation) for method, out in outs.items()]
    spec = folder / f"{layout}.json"
    spec.write_text(json.dumps(runs))
    result = subprocess.run([*launcher(processes), __file__, str(spec)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return outs, result.stderr


def history(out):
    return json.loads((out / "history.json").read_text())


def assert_close_weights(expected_folder, got_folder):
    expected, got = load_file(expected_folder / "model.safetensors"), load_file(got_folder / "model.safetensors")
    assert expected.keys() == got.keys()
    assert max((expected[k] - got[k]).abs().max().item() for k in expected) < TOLERANCE["weights"], got_folder


def assert_same_training(one, other):
    """The same logged steps, losses and key entropies, and the same weights, model and checkpoints."""
    expected, got = history(one), history(other)
    assert [e["step"] for e in got] == [e["step"] for e in expected] and len(expected) == 3
    for key in ("loss", "key_entropy"):
        assert all(abs(e[key] - g[key]) < TOLERANCE[key] for e, g in zip(expected, got) if key in e), key
    assert [key in g for g in got] == [key in e for e in expected]
    for folder in ["model", *(f"checkpoints/point{p:02d}" for p in range(3))]:
        assert_close_weights(one / folder, other / folder)


@pytest.fixture(scope="module")
def trained(tiny_world, tiny_model_dir, tmp_path_factory):
    """{layout: ({method: output folder}, job log)} for one process, DDP and FSDP."""
    folder = tmp_path_factory.mktemp("distributed")
    return {layout: launch(layout, tiny_world, tiny_model_dir, folder) for layout in LAYOUTS}


@pytest.mark.parametrize("layout", ["ddp", "fsdp"])
def test_two_processes_train_as_one_and_rank_0_writes_plain_models(trained, layout):
    one, (outs, log) = trained["one"][0], trained[layout]
    assert "key_entropy" in history(one["regularization"])[0]
    for method, out in outs.items():
        assert_same_training(one[method], out)
        assert sorted(p.name for p in out.rglob("*")) == sorted(p.name for p in one[method].rglob("*"))
        model, _ = models.load(out / "model")  # a plain Hugging Face folder, with its tokenizer
        assert models.read_method(out / "model")["method"] == method
    # The job log says how the model was shared, once per run: only rank 0 logs below warnings.
    held = re.findall(r"(none|fsdp) over 2 processes: rank 0 holds ([\d,]+) of ([\d,]+) weights", log)
    total = sum(p.numel() for p in model.parameters())
    share = total if layout == "ddp" else total // 2
    assert len(held) == 3 and all(abs(int(h.replace(",", "")) - share) <= 100 for _, h, _ in held)
    assert log.count(" on 20 examples") == 3


def test_a_killed_fsdp_job_resumes_from_its_checkpoint(trained, tiny_world, tiny_model_dir, tmp_path):
    processes, sharding, batch_size, accumulation = LAYOUTS["fsdp"]
    resume_dir = tmp_path / "resume"
    args = finetune_args(tiny_world, tiny_model_dir, tmp_path, "regularization", sharding, batch_size, accumulation,
                         **{"--resume-dir": resume_dir, "--resume-every": 5})
    command = [*launcher(processes), "-m", "infoflow.posttrain.finetune", *args]
    job = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker, deadline = resume_dir / "checkpoint-5" / "complete", time.monotonic() + 120
    while not marker.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    # As a lost node kills them: the processes first (torchrun starts each in a session of its own,
    # so they outlive a launcher killed alone), then the launcher.
    workers = [int(pid) for pid in Path(f"/proc/{job.pid}/task/{job.pid}/children").read_text().split()]
    for pid in [*workers, job.pid]:
        os.kill(pid, signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL and len(workers) == 2, "the job ended before it could be killed"
    assert not (tmp_path / "model").exists() and not (tmp_path / "checkpoints").exists()
    # Rank 0 wrote the resume checkpoint with the whole weights, a plain Hugging Face model (and the
    # Trainer's own FSDP files to resume from beside it).
    saved = AutoModelForCausalLM.from_pretrained(resume_dir / "checkpoint-5").state_dict()
    base = models.load(tiny_model_dir)[0].state_dict()
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in base.items()}

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"infoflow\.training\.trainer: continuing from \S+/checkpoint-(5|10)$", resumed.stderr, re.M)
    assert "step 5/15" not in resumed.stderr  # it went on from the checkpoint, not from step 0
    assert_same_training(trained["one"][0]["regularization"], tmp_path)
    uninterrupted = trained["fsdp"][0]["regularization"]  # and, bit for bit, as the FSDP job never killed
    assert history(tmp_path) == history(uninterrupted)
    assert all(torch.equal(w, load_file(tmp_path / "model/model.safetensors")[k])
               for k, w in load_file(uninterrupted / "model/model.safetensors").items())
    assert not resume_dir.exists() and not list((tmp_path / "checkpoints").glob(".*"))


def test_each_sharding_needs_its_share_of_a_device(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    # 18 bytes per parameter in bf16-mixed: FSDP splits them all, ZeRO-2 all but the 4 of the weights.
    assert [distributed.training_bytes("bf16-mixed", s) for s in distributed.SHARDINGS] == [18, 4.5, 4 + 14 / 4]
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert distributed.training_bytes("bf16-mixed", "fsdp") == 4  # the whole weights, loaded before sharding
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.training_bytes("bf16-mixed", "fsdp") == 18 and distributed.trainer_options("fsdp", None) == {}


def test_deepspeed_that_cannot_run_stops_in_one_line(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "deepspeed" else find_spec(name, *args))
    with pytest.raises(StageFailure, match=r"^sft.sharding: deepspeed needs the 'deepspeed' package \(pip install deepspeed==0.19.8\)$"):
        distributed.prepare("deepspeed")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object() if name == "deepspeed" else find_spec(name, *args))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StageFailure, match="^sft.sharding: deepspeed needs CUDA GPUs; on the CPU use fsdp or none$"):
        distributed.prepare("deepspeed")


def test_a_job_given_fewer_gpus_than_processes_stops_in_one_line(monkeypatch):
    for name, value in {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4", "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(StageFailure, match=r"^sft.devices_per_job: 4 processes on this node, which gives the job 1 GPU\(s\)"):
        distributed.prepare("fsdp")


@pytest.mark.parametrize("sft, methods, message", [
    ({"sharding": "fsdp"}, {}, "sft.sharding: fsdp shares a model between the devices of a job, and sft.devices_per_job is 1;"),
    ({"devices_per_job": 2, "sharding": "fsdp"}, {"lora_r8": {"kind": "lora"}}, "methods.lora_r8: lora cannot train under sft.sharding: fsdp"),
    ({"devices_per_job": 2, "sharding": "deepspeed", "precision": "bf16-pure"}, {}, "sft.precision: bf16-pure cannot train under"),
])
def test_config_check_names_the_key_of_a_sharding_that_cannot_train(sft, methods, message):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["sft"] |= sft
    config["methods"] |= methods
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        check(config)
    config["sft"]["devices_per_job"], config["sft"]["sharding"], config["sft"]["precision"] = 2, "none", "auto"
    check(config)


if __name__ == "__main__":  # in each launched process: the finetune runs listed in the JSON file argv[1]
    from infoflow.posttrain import finetune

    for run in json.loads(Path(sys.argv[1]).read_text()):
        sys.argv = ["infoflow.posttrain.finetune", *run]
        finetune.main()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
