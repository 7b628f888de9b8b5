"""Each concurrent GPU job on one machine gets GPUs of its own, through lock files.

Snakemake counts GPU jobs (`resources: gpu` in the profile) but assigns no devices, so every job
would land on cuda:0. A job claims devices by taking an exclusive flock on one lock file per device
(in INFOFLOW_DEVICE_LOCKS, default a per-user folder in the system temp dir). The kernel drops a
flock when the last process holding its file closes or dies, so a crashed or killed job never
leaves a device claimed. The command line wraps a job's command:

    python -m infoflow.devices --count 1 -- python -m infoflow.posttrain.finetune ...

It claims the devices, then execs the command with CUDA_VISIBLE_DEVICES naming them: the command
keeps the lock files open (so the claim lasts exactly as long as it runs), receives signals directly
and its exit status is the job's. A `python -m` command goes to the run's warm process instead when
one listens (infoflow.forkserver); this process then holds the claim until the job has ended. With no
GPUs (CPU machines, CI) the command runs unchanged; under SLURM, whose CUDA_VISIBLE_DEVICES already
names the job's own devices, it is left as the scheduler set it.
"""

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from infoflow import forkserver

LOCKS_ENV = "INFOFLOW_DEVICE_LOCKS"
POLL_SECONDS = 0.5


class DeviceError(RuntimeError):
    """The devices asked for cannot be claimed; the message says why in one line."""


NVIDIA_PROC = "/proc/driver/nvidia/gpus"  # one folder per GPU wherever the NVIDIA driver is loaded


def machine_devices():
    """The machine's GPUs as CUDA_VISIBLE_DEVICES entries: that variable's own entries if it is set
    (an empty value hides every GPU), else one index per GPU `nvidia-smi -L` lists, else one per
    GPU the driver lists in /proc where nvidia-smi is missing; [] on a machine without GPUs. (Not
    torch's count: importing torch would cost every job seconds.)"""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [entry.strip() for entry in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if entry.strip()]
    if shutil.which("nvidia-smi"):
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        # A driver without a GPU (or a broken one) fails: no devices to hand out.
        count = sum(line.startswith("GPU ") for line in listing.stdout.splitlines()) if listing.returncode == 0 else 0
    else:
        count = len(os.listdir(NVIDIA_PROC)) if os.path.isdir(NVIDIA_PROC) else 0
    return [str(index) for index in range(count)]


def lock_folder():
    """Where the lock files live: $INFOFLOW_DEVICE_LOCKS, or one folder per user in the temp dir."""
    return os.environ.get(LOCKS_ENV) or os.path.join(tempfile.gettempdir(), f"infoflow-device-locks-{os.getuid()}")


def lock_path(folder, device):
    # Entries can be UUIDs or MIG names with slashes: keep file names plain.
    return os.path.join(folder, "gpu-" + re.sub(r"[^A-Za-z0-9_.-]", "_", device) + ".lock")


class Claim:
    """Devices held through their open, flocked lock files; `release()` (or process exit) frees them."""

    def __init__(self, devices, files):
        self.devices, self.files = devices, files

    def release(self):
        for fd in self.files:
            os.close(fd)  # closing the last descriptor of a lock file drops its flock
        self.files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def try_claim(count, devices, folder):
    """A Claim of the first `count` free devices, or None if fewer are free (then none is held,
    so two jobs that each hold part of what they need cannot block each other)."""
    held, files = [], []
    for device in devices:
        fd = os.open(lock_path(folder, device), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        # The holder's pid, for the message of a job that waits too long.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        held.append(device)
        files.append(fd)
        if len(held) == count:
            return Claim(held, files)
    Claim(held, files).release()
    return None


def holders(folder, devices):
    """'device (pid N)' for each device, as its lock file names its last holder."""
    described = []
    for device in devices:
        try:
            with open(lock_path(folder, device)) as f:
                pid = f.read().strip()
        except OSError:
            pid = ""
        described.append(f"{device} (pid {pid})" if pid else device)
    return ", ".join(described)


def claim(count, devices=None, folder=None, timeout=3600.0, poll=POLL_SECONDS, log=None):
    """Claim `count` of `devices` (default: the machine's, machine_devices()), waiting up to `timeout`
    seconds for them to be free; return a Claim. Raises DeviceError if there are fewer devices than
    `count`, or if they do not come free in time. `log(line)` is told once when the claim must wait."""
    devices = machine_devices() if devices is None else list(devices)
    folder = folder or lock_folder()
    if count > len(devices):
        raise DeviceError(f"{count} GPUs asked for, this machine has {len(devices)} ({', '.join(devices) or 'none'})")
    os.makedirs(folder, exist_ok=True)
    deadline = time.monotonic() + timeout
    while (held := try_claim(count, devices, folder)) is None:
        if time.monotonic() >= deadline:
            raise DeviceError(
                f"no {count} free of GPUs {holders(folder, devices)} within {timeout:g} s (lock files in {folder}); "
                "wait for those jobs, or raise --timeout"
            )
        if log:
            log(f"waiting for {count} free of GPUs {', '.join(devices)} (held by other jobs)")
            log = None
        time.sleep(poll)
    return held


def job_environment(count, timeout, log):
    """(environment for the job, the Claim to keep open while it runs or None)."""
    env = dict(os.environ)
    if os.environ.get("SLURM_JOB_ID") and "CUDA_VISIBLE_DEVICES" in os.environ:
        return env, None  # the scheduler gave this job its devices
    devices = machine_devices()
    if not devices:
        return env, None  # no GPUs: the job runs on the CPU as it is
    if count == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""  # a job that asked for no GPU must not take someone's cuda:0
        return env, None
    held = claim(count, devices, timeout=timeout, log=log)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(held.devices)
    return env, held


def say(line):
    print(f"infoflow.devices: {line}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, required=True, help="GPUs the job needs (0: none, GPUs hidden)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for free GPUs before failing")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the job's command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (write it after --)")
    if args.count < 0:
        parser.error(f"--count: {args.count} is negative")
    try:
        env, held = job_environment(args.count, args.timeout, say)
    except DeviceError as e:
        say(str(e))
        sys.exit(1)
    if held is not None:
        say(f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}")
        for fd in held.files:
            os.set_inheritable(fd, True)  # the command holds the claim from here on
    status = forkserver.run(command, env)
    if status is not None:
        sys.exit(status)  # the claim's lock files close with this process, after the job's end
    try:
        os.execvpe(command[0], command, env)
    except OSError as e:
        say(f"cannot run {command[0]}: {e.strerror}")
        sys.exit(127)


if __name__ == "__main__":
    main()
