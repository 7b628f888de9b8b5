"""A warm Python process that starts a local run's model jobs by forking, so that each job does not
spend its first seconds importing torch and transformers (2.6 s of every model job on the default
2-core machine, about 300 jobs in the default run).

The Snakefile starts one server per local run (`onstart`) and stops it when the run ends; the path of
its socket is in FORKSERVER_ENV, which every job inherits. infoflow.devices, which wraps each model
job's command, hands a `python -m module args...` command to the server (`run`) when the socket
answers and the job's Python is the server's. The server forks a handler; the handler forks the job,
which takes the job's working folder, environment, arguments and standard streams, runs the module
as __main__ and exits with its status, which the handler reports back. The wrapper exits with it, so
to Snakemake the job is the same job: its inputs, outputs, log, benchmark wall time and partial
reruns are unchanged. Anything else (another interpreter, a launcher such as torchrun, no server, a
cluster node) runs as before, by exec.

The server never runs a torch operation, so no OpenMP or CUDA state exists to be inherited: each job
sets its own threads (infoflow.cli.setup) and devices (CUDA_VISIBLE_DEVICES, read when CUDA starts).
A job's CPU time and memory are those of the forked process, which Snakemake's benchmark does not see
(it measures the wrapper); its wall time is exact.
"""

import argparse
import atexit
import importlib
import json
import os
import random
import re
import runpy
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import traceback

FORKSERVER_ENV = "INFOFLOW_FORKSERVER"
HEADER = struct.Struct("!Q")  # length of the request's JSON
STREAMS = 3  # stdin, stdout, stderr: passed as file descriptors
# The signal handlers of a fresh interpreter, which the job gets back from the server's and handler's.
DEFAULT_SIGNALS = {signal.SIGTERM: signal.SIG_DFL, signal.SIGHUP: signal.SIG_DFL, signal.SIGCHLD: signal.SIG_DFL,
                   signal.SIGINT: signal.default_int_handler}
# What the model jobs import, loaded once in the server: libraries only (this low-level helper
# imports nothing of the package), down to the transformers modules that its lazy names resolve to.
# Not polars: it starts threads at import, which a fork does not copy (its documentation warns
# against forking it); a job imports it itself.
PRELOAD = ("numpy", "safetensors.torch", "torch", "transformers", "transformers.trainer",
           "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto",
           "transformers.models.llama.modeling_llama")


def request_for(command, env):
    """The request that runs `command` ([python, -m, module, args...]) with `env`; None when the
    server cannot run it (not a module run by this interpreter's name)."""
    if len(command) < 3 or not re.fullmatch(r"python[0-9.]*", os.path.basename(command[0])) or command[1] != "-m":
        return None
    return {"prefix": sys.prefix, "cwd": os.getcwd(), "env": env, "module": command[2], "args": command[3:]}


def run(command, env):
    """Run `command` on the server named by FORKSERVER_ENV; its exit status, or None if no server
    takes it (none running, another interpreter, not a `python -m` command): then run it yourself."""
    path = env.get(FORKSERVER_ENV)
    request = request_for(command, env)
    if not path or request is None:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        return None  # a stale variable (the run ended, a cluster node): run the command directly
    body = json.dumps(request).encode()
    socket.send_fds(connection, [HEADER.pack(len(body))], [0, 1, 2])
    connection.sendall(body)
    reply = connection.makefile("r")
    first = reply.readline().split()
    if not first or first[0] != "pid":
        return None  # refused: the job's Python is not the server's
    # Snakemake stops a job by signalling it: pass the signal on to the forked job, then wait for it.
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda number, frame: connection.sendall(f"signal {number}\n".encode()))
    last = reply.readline().split()
    if len(last) != 2 or last[0] != "exit":
        print("infoflow.forkserver: the server ended before the job reported its status", file=sys.stderr)
        return 1
    return int(last[1])


def receive(connection):
    """(request, the three stream descriptors) read from a client's connection."""
    header, fds, _, _ = socket.recv_fds(connection, HEADER.size, STREAMS)
    (length,) = HEADER.unpack(header)
    body = b""
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise ConnectionError("the client closed its connection mid-request")
        body += chunk
    return json.loads(body), fds


def run_module(request, fds):
    """In the forked job: become the job (folder, environment, streams, arguments), run its module
    as __main__, and end the process with its exit status, as `python -m` would."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    sys.path[0] = os.getcwd()  # as `python -m` puts the working folder first
    sys.argv = [request["module"], *request["args"]]
    random.seed()  # a fresh interpreter seeds `random` from the OS, not from the server's state
    for number, default in DEFAULT_SIGNALS.items():
        signal.signal(number, default)
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    # The exit handlers a normal interpreter exit runs (logging's flush among them), then the exit.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def handle(connection):
    """In the handler process: fork the job, pass the client's signals on, report its status."""
    request, fds = receive(connection)
    if request["prefix"] != sys.prefix:
        connection.sendall(b"refused: another Python\n")
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        connection.close()
        run_module(request, fds)
    for fd in fds:
        os.close(fd)
    connection.sendall(f"pid {pid}\n".encode())
    print(f"job {pid}: python -m {request['module']} in {request['cwd']}", flush=True)
    job = os.pidfd_open(pid)
    messages = connection.makefile("r")
    while True:
        ready, _, _ = select.select([job, connection], [], [])
        if job in ready:
            break
        line = messages.readline().split()
        # A client that died (end of file) takes its job with it.
        os.kill(pid, int(line[1]) if len(line) == 2 and line[0] == "signal" else signal.SIGTERM)
        if not line:
            break
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    try:
        connection.sendall(f"exit {code if code >= 0 else 128 - code}\n".encode())
    except OSError:
        pass  # the client is gone
    os._exit(0)


def serve(path, parent):
    """Accept jobs on the socket at `path` until process `parent` (the Snakemake run) is gone."""
    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    try:
        while os.getppid() == parent:
            if not select.select([listener], [], [], 1.0)[0]:
                continue
            connection, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the handler waits for its job itself
                try:
                    handle(connection)
                except BaseException:
                    traceback.print_exc()  # to the server's log: the client reports a missing status
                os._exit(1)
            connection.close()
    finally:
        os.unlink(path)


def start(log_path):
    """Start a server for this process's jobs: put its socket's path in this process's environment
    (which the jobs inherit) and return the server's process. It exits with this process, and
    writes a line per job it starts to `log_path`."""
    folder = tempfile.mkdtemp(prefix="infoflow-forkserver-")  # a short path: socket paths are limited
    path = os.path.join(folder, "socket")
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "infoflow.forkserver", "--socket", path],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    os.environ[FORKSERVER_ENV] = path
    return process


def stop(process):
    """Stop a server that `start` started, and remove its socket's folder."""
    os.environ.pop(FORKSERVER_ENV, None)
    process.terminate()
    process.wait()
    shutil.rmtree(os.path.dirname(process.args[-1]), ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    serve(args.socket, os.getppid())


if __name__ == "__main__":
    main()
