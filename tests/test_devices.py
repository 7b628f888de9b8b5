"""The GPU lock-file allocator, on the CPU: CUDA_VISIBLE_DEVICES names a fake machine's devices,
and real jobs (subprocesses through `python -m infoflow.devices`) claim them concurrently."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from infoflow.devices import DeviceError, claim

# A job that writes the devices it sees to <folder>/<pid>, then holds them until <folder>/release
# exists (or, given a count, until that many jobs have written theirs: all held at once).
JOB = """
import os, sys, time
folder, until = sys.argv[1], sys.argv[2]
with open(os.path.join(folder, str(os.getpid())), "w") as f:
    f.write(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
def done():
    if until == "release":
        return os.path.exists(os.path.join(folder, "release"))
    return len([n for n in os.listdir(folder) if n.isdigit()]) >= int(until)
deadline = time.monotonic() + 60
while not done():
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.05)
"""


def start(tmp_path, until, count=1, visible="0,1", **env):
    seen = tmp_path / "seen"
    seen.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}
    environment["INFOFLOW_DEVICE_LOCKS"] = str(tmp_path / "locks")
    if visible is not None:
        environment["CUDA_VISIBLE_DEVICES"] = visible
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "infoflow.devices", "--count", str(count), "--", sys.executable, "-c", JOB, str(seen), str(until)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def seen_by(tmp_path, job):
    return (tmp_path / "seen" / str(job.pid)).read_text()  # exec keeps the wrapper's pid


def wait_for(path, seconds=30):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_concurrent_jobs_get_different_devices(tmp_path):
    # Each job holds its claim until both have started: they ran at the same time.
    jobs = [start(tmp_path, until=2) for _ in range(2)]
    for job in jobs:
        assert job.wait(60) == 0, job.stderr.read()
    assert sorted(seen_by(tmp_path, job) for job in jobs) == ["0", "1"]
    assert "infoflow.devices: CUDA_VISIBLE_DEVICES=" in jobs[0].stderr.read()


def test_a_job_waits_until_a_device_is_released(tmp_path):
    holders = [start(tmp_path, until="release") for _ in range(2)]
    for job in holders:
        wait_for(tmp_path / "seen" / str(job.pid))
    waiting = start(tmp_path, until=3)
    time.sleep(1.5)
    assert waiting.poll() is None and not (tmp_path / "seen" / str(waiting.pid)).exists()
    with pytest.raises(DeviceError, match=r"^no 1 free of GPUs 0 \(pid \d+\), 1 \(pid \d+\) within 0.2 s"):
        claim(1, ["0", "1"], tmp_path / "locks", timeout=0.2)
    (tmp_path / "seen/release").touch()
    assert waiting.wait(60) == 0, waiting.stderr.read()
    assert "waiting for 1 free of GPUs 0, 1" in waiting.stderr.read()
    assert seen_by(tmp_path, waiting) in ("0", "1")
    for job in holders:
        assert job.wait(60) == 0


def test_a_killed_holder_releases_its_device(tmp_path):
    holder = start(tmp_path, until="release", visible="0")
    wait_for(tmp_path / "seen" / str(holder.pid))
    with pytest.raises(DeviceError):
        claim(1, ["0"], tmp_path / "locks", timeout=0.2)
    holder.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops the flock
    holder.wait(30)
    with claim(1, ["0"], tmp_path / "locks", timeout=5) as held:
        assert held.devices == ["0"]
    claim(1, ["0"], tmp_path / "locks", timeout=0).release()  # released by the block's end


def test_a_claim_of_two_takes_two_devices_or_none(tmp_path):
    with claim(1, ["0", "1"], tmp_path, timeout=0) as first:
        with pytest.raises(DeviceError):
            claim(2, ["0", "1"], tmp_path, timeout=0.2)
        with claim(1, ["0", "1"], tmp_path, timeout=0) as second:  # the failed claim kept nothing
            assert {*first.devices, *second.devices} == {"0", "1"}
    with pytest.raises(DeviceError, match=r"^3 GPUs asked for, this machine has 2 \(0, 1\)$"):
        claim(3, ["0", "1"], tmp_path)


@pytest.mark.skipif(torch.cuda.is_available() or shutil.which("nvidia-smi") is not None, reason="this machine has GPUs")
def test_without_gpus_the_command_runs_unchanged(tmp_path):
    job = start(tmp_path, until=1, visible=None)
    assert job.wait(60) == 0, job.stderr.read()
    assert seen_by(tmp_path, job) == "unset" and job.stderr.read() == ""
    assert not (tmp_path / "locks").exists()


@pytest.mark.parametrize("count, env, seen", [
    (1, {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "3"}, "3"),  # the scheduler's choice stays
    (0, {"CUDA_VISIBLE_DEVICES": "0,1"}, ""),  # a job that asked for no GPU sees none
    (1, {"CUDA_VISIBLE_DEVICES": ""}, ""),  # every GPU hidden: none to claim, run on the CPU
])
def test_jobs_the_allocator_leaves_alone(tmp_path, count, env, seen):
    job = start(tmp_path, until=1, count=count, visible=None, **env)
    assert job.wait(60) == 0, job.stderr.read()
    assert seen_by(tmp_path, job) == seen
    assert not (tmp_path / "locks").exists()


def test_the_exit_status_is_the_commands_and_errors_are_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0", "INFOFLOW_DEVICE_LOCKS": str(tmp_path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "infoflow.devices", *args], env=env, capture_output=True, text=True)

    assert run("--count", "1", "--", sys.executable, "-c", "import sys; sys.exit(3)").returncode == 3
    result = run("--count", "2", "--", "true")
    assert result.returncode == 1
    assert result.stderr == "infoflow.devices: 2 GPUs asked for, this machine has 1 (0)\n"
    assert run("--count", "1", "--", "no-such-command").stderr.endswith(
        "infoflow.devices: cannot run no-such-command: No such file or directory\n")
