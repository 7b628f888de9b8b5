"""The fork server: real jobs through `python -m infoflow.devices`, started by forking a running
server, behave as the same command started directly (status, streams, folder, environment, threads,
signals), and anything the server cannot take runs directly."""

import os
import signal
import subprocess
import sys
import time

import pytest

from infoflow import forkserver

# A job module: reports its arguments, folder, an environment variable and torch's threads, then
# exits with the status given, or waits (for a signal) when told to.
PROBE = """
import os, sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
product = torch.ones(256, 256) @ torch.ones(256, 256)  # a parallel region in the job itself
print("args", sys.argv[1:], "cwd", os.getcwd(), "probe", os.environ.get("PROBE_VALUE"))
print("threads", torch.get_num_threads(), "sum", int(product.sum()))
print("to stderr", file=sys.stderr)
sys.stdout.flush()
if sys.argv[1] == "wait":
    open("waiting", "w").close()
    time.sleep(60)
sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else 0)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "forkserver.log"
    process = forkserver.start(str(log))
    path = os.environ[forkserver.FORKSERVER_ENV]
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server never listened"
        time.sleep(0.1)
    yield path, log
    forkserver.stop(process)
    assert not os.path.exists(path)


def job(folder, *args, socket_path=None, wait=True):
    """`python -m infoflow.devices -- python -m probe args` in `folder`, through the server at `socket_path`."""
    (folder / "probe.py").write_text(PROBE)
    env = {**os.environ, "PROBE_VALUE": "seen", "CUDA_VISIBLE_DEVICES": ""}
    env.pop(forkserver.FORKSERVER_ENV, None)
    if socket_path:
        env[forkserver.FORKSERVER_ENV] = socket_path
    command = [sys.executable, "-m", "infoflow.devices", "--count", "0", "--", sys.executable, "-m", "probe", *map(str, args)]
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return process
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def started_jobs(log):
    return log.read_text().count("python -m probe")


def test_a_forked_job_is_the_job_started_directly(server, tmp_path):
    path, log = server
    before = started_jobs(log)
    forked = job(tmp_path, 3, 2, socket_path=path)
    direct = job(tmp_path, 3, 2)
    assert started_jobs(log) == before + 1  # the first ran on the server, the second did not
    assert forked == direct
    status, out, err = forked
    assert status == 3
    assert f"args ['3', '2'] cwd {tmp_path} probe seen" in out
    assert "threads 2 sum 16777216" in out
    assert "to stderr" in err


def test_forked_jobs_are_faster_to_start(server, tmp_path):
    def seconds(**kwargs):
        start = time.monotonic()
        assert job(tmp_path, 0, 1, **kwargs)[0] == 0
        return time.monotonic() - start

    assert seconds(socket_path=server[0]) < seconds()  # torch is imported once, in the server


def waiting_job(folder, socket_path, log):
    """(wrapper process, pid of its forked job) of a probe that waits for a signal, once it waits."""
    process = job(folder, "wait", 1, socket_path=socket_path, wait=False)
    deadline = time.monotonic() + 60
    while not (folder / "waiting").exists():
        assert time.monotonic() < deadline, process.stderr.read() if process.poll() is not None else "never started"
        time.sleep(0.05)
    return process, int(log.read_text().strip().splitlines()[-1].split()[1].rstrip(":"))


def assert_ends(pid, message):
    """Within 10 s, process `pid` is gone or a zombie (dead, not yet reaped)."""
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def test_a_signal_to_the_job_reaches_the_forked_process(server, tmp_path):
    process, forked_pid = waiting_job(tmp_path, *server)
    process.send_signal(signal.SIGTERM)  # as Snakemake stops a job
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert_ends(forked_pid, "the forked job outlived its signal")


def test_a_killed_wrapper_takes_its_forked_job_with_it(server, tmp_path):
    process, forked_pid = waiting_job(tmp_path, *server)
    process.kill()  # SIGKILL: no chance to pass anything on
    process.wait()
    assert_ends(forked_pid, "the forked job outlived its wrapper")


def test_what_the_server_cannot_take_runs_directly(server, tmp_path):
    path, log = server
    before = started_jobs(log)
    assert forkserver.run(["python", "-c", "print(1)"], {forkserver.FORKSERVER_ENV: path}) is None
    assert forkserver.run(["torchrun", "-m", "probe"], {forkserver.FORKSERVER_ENV: path}) is None
    assert forkserver.run(["python", "-m", "probe"], {forkserver.FORKSERVER_ENV: str(tmp_path / "gone")}) is None
    assert forkserver.run(["python", "-m", "probe"], {}) is None
    assert job(tmp_path, 0, 1, socket_path=str(tmp_path / "gone"))[0] == 0  # a stale socket path
    assert started_jobs(log) == before


def test_another_python_is_refused(server, tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver.sys, "prefix", str(tmp_path / "other-env"))  # the client's side of the check
    assert forkserver.run(["python", "-m", "probe"], {forkserver.FORKSERVER_ENV: server[0]}) is None
