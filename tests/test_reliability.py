"""Nothing lost, nothing half-written, the same bytes every time, and no untrusted code or pickles:
the workflow killed midway, writers killed mid-write, hostile config strings, and untrusted models."""

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from conftest import REPO, RESULTS, assert_identical_results, copy_workflow, run_folders, snakemake
from infoflow import parquet
from infoflow.inforidge import activations
from infoflow.training import models
from infoflow.io import DataError


def test_run_killed_midway_and_rerun_matches_an_uninterrupted_run_byte_for_byte(smoke_run, tmp_path):
    """Determinism and recovery at once: a second run from scratch, killed (SIGKILL to Snakemake and
    every job) while post-training, then rerun, gives the same bytes as the first: metrics tables,
    models, Parquet activations, figures."""
    workdir = copy_workflow(tmp_path / "workflow")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", "--workflow-profile", "none"],
                           cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    resources = workdir / "resources"
    deadline = time.monotonic() + 600
    while not (resources.exists() and any(resources.glob("base-*/runs/**/finetune.log"))) and time.monotonic() < deadline:
        assert run.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not (workdir / RESULTS / "tables/accuracy.csv").exists()

    assert snakemake(workdir, "--unlock").returncode == 0
    result = snakemake(workdir, "--rerun-incomplete")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_identical_results(smoke_run, workdir)


def test_a_model_path_with_spaces_quotes_and_semicolons_reaches_commands_quoted(tiny_model_dir, tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    model = tmp_path / """my "tiny" model's; touch INJECTED"""
    shutil.copytree(tiny_model_dir, model)
    override = tmp_path / "model.yaml"
    override.write_text(yaml.safe_dump({"base_model": {"pretrained": str(model)}}))
    # One SFT model, and the base model's key thresholds (their key is the key-share stage's).
    assert snakemake(workdir, "run_config", "--configfile", "config.yaml", override).returncode == 0
    sft = run_folders(workdir)["knowledge", "sft", 0]
    world, key_shift = sft["folder"].split("/runs/")[0], sft["key_shares"].rsplit("-", 1)[1]
    targets = [f"{sft['folder']}/model/model.safetensors", f"{world}/base/key_shift-{key_shift}/thresholds.json"]
    result = snakemake(workdir, *targets, "--configfile", "config.yaml", override)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all((workdir / target).is_file() for target in targets)
    assert not list(tmp_path.rglob("INJECTED"))


def test_parquet_writer_killed_mid_write_leaves_no_readable_file(tmp_path):
    """The writer every extraction and analysis Parquet goes through, in a process killed after
    its first record batch."""
    out = tmp_path / "activations.parquet"
    script = f"""
import os, signal
import pyarrow as pa
from infoflow import parquet
schema = pa.schema([("layer", pa.int32()), ("hidden", pa.list_(pa.float32(), 2))])
with parquet.writer({str(out)!r}, schema) as write:
    write({{"layer": [0, 1], "hidden": [[0.0, 1.0], [2.0, 3.0]]}})
    os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not out.exists()
    with pytest.raises(DataError, match="not a readable Parquet file"):
        activations.read(out)
    # The half-written temporary file goes when the file is next written.
    assert len(list(tmp_path.glob(".activations.parquet.*.tmp"))) == 1
    with parquet.writer(out, pa.schema([("layer", pa.int32())])) as write:
        write({"layer": [0]})
    assert [p.name for p in tmp_path.iterdir()] == ["activations.parquet"]


# Calls that write files. Each must sit inside a `with atomic_path(...)` or `with staged_folder(...)`
# block (infoflow.io), or write a file that no rule reads: the resume folder's (training) and the
# fork server's list of the jobs it started, in .snakemake/ (forkserver).
# (polars frames write with write_csv / write_parquet / sink_*; a bare write_csv(...) is infoflow.io's.)
WRITERS = {"to_csv", "to_parquet", "write_csv", "write_parquet", "sink_csv", "sink_parquet", "savefig", "write_text",
           "write_bytes", "ParquetWriter", "write_table", "save_pretrained"}
UNREAD = {("resume", "open"), ("forkserver", "open")}  # resume's marker and fingerprint; the fork server's log


def unsafe_writes(path):
    tree = ast.parse(path.read_text())
    atomic = {node.lineno for block in ast.walk(tree) if isinstance(block, ast.With)
              and any(re.match(r"(atomic_path|staged_folder)\(", ast.unparse(item.context_expr)) for item in block.items)
              for node in ast.walk(block) if hasattr(node, "lineno")}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        # Methods that write (Path.write_text, DataFrame.to_csv, ...), and the open() builtin for
        # writing; a bare write_text(...) is infoflow.io's atomic one.
        name = getattr(node.func, "attr", None)
        writes = name in WRITERS
        if isinstance(node.func, ast.Name) and node.func.id == "open":
            name, mode = "open", [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            writes = bool(mode) and bool(set(mode[0]) & set("wax"))
        if writes and node.lineno not in atomic and (path.stem, name) not in UNREAD:
            yield f"{path.name}:{node.lineno} {name}"


def test_results_are_written_only_through_atomic_paths():
    modules = [p for p in sorted((REPO / "src/infoflow").rglob("*.py")) if p.relative_to(REPO / "src/infoflow") != Path("io.py")]
    assert [write for path in modules for write in unsafe_writes(path)] == []


def test_no_module_unpickles_files():
    source = "\n".join(p.read_text() for p in (REPO / "src/infoflow").rglob("*.py"))
    for call in ("torch.load(", "pickle.load", "allow_pickle=True", "read_pickle(", "joblib.load("):
        assert call not in source


def test_model_code_runs_only_when_the_config_trusts_it(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "custom", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}')
    (tmp_path / "configuration_custom.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').close()\n")
    with pytest.raises(DataError, match=r"ships its own code, which runs only with model_loading.trust_remote_code: true"):
        models.load(tmp_path)
    assert not (tmp_path / "RAN").exists()


def test_pickled_weights_are_refused(tiny_model_dir, tmp_path):
    import torch

    for item in tiny_model_dir.iterdir():
        if item.suffix != ".safetensors":
            shutil.copy(item, tmp_path)
    torch.save(models.load(tiny_model_dir)[0].state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(DataError, match=r"no \.safetensors weights \(pickled weights such as pytorch_model.bin are never loaded"):
        models.load(tmp_path)
