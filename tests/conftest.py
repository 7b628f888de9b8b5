import csv
import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = "results/smoke"  # the smoke config's run folder (run: smoke)
# No test may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"


def run_module(module, *args, check=True):
    """Run `python -m infoflow.<module> args` as a pipeline job would; return the CompletedProcess."""
    result = subprocess.run(
        [sys.executable, "-m", f"infoflow.{module}", *map(str, args)], capture_output=True, text=True, cwd=REPO
    )
    if check and result.returncode != 0:
        raise AssertionError(f"infoflow.{module} failed:\n{result.stderr}")
    return result


def copy_workflow(workdir, config=REPO / "tests/configs/smoke.yaml"):
    """The workflow's files in `workdir` with `config` as its config.yaml, as a user's clone."""
    workdir.mkdir(exist_ok=True)
    for item in ("Snakefile", "workflow", "src", "envs"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, workdir / item)
    shutil.copy(config, workdir / "config.yaml")
    return workdir


def snakemake(workdir, *args, env=None, cores=2):
    """Run Snakemake in `workdir` as the README does (no workflow profile unless `args` name one)."""
    env = {**(env or os.environ), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores), "--workflow-profile", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True,
    )


def world_dir(workdir):
    """The one shared world and base-model folder (resources/base-<settings key>) of `workdir`."""
    [world] = (workdir / "resources").glob("base-*")
    return world


def run_folders(workdir, results=RESULTS):
    """{(task, method, seed): the run's row of <results>/runs.csv}: its folder in resources/ and the
    folder of each stage's outputs there."""
    with open(workdir / results / "runs.csv", newline="") as f:
        return {(row["task"], row["method"], int(row["seed"])): row for row in csv.DictReader(f)}


def files_under(workdir):
    """Every file a run wrote under `workdir`'s results/ and resources/, but logs and benchmarks
    (which hold times and dates)."""
    return sorted(
        p.relative_to(workdir) for top in ("results", "resources") for p in (workdir / top).rglob("*")
        if p.is_file() and p.suffix not in (".log", ".tsv")
    )


def assert_identical_results(first, second):
    """The same files written under both workflow folders, byte for byte (logs and benchmarks aside)."""
    assert files_under(second) == files_under(first)
    _, mismatch, errors = filecmp.cmpfiles(first, second, [str(p) for p in files_under(first)], shallow=False)
    assert not mismatch and not errors


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole DAG run once on the smoke config (tests that change it work on dry runs only)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A small knowledge world and modular task on disk, with a tokenizer over both."""
    from infoflow.world import knowledge_world, modular_task
    from infoflow.io import write_jsonl
    from infoflow.world.tokenizer import train_tokenizer, texts_of

    root = tmp_path_factory.mktemp("world")
    facts_rows = knowledge_world.make_facts(10, {"city": 4, "year": 5, "company": 3, "field": 3}, seed=0)
    facts = {}
    for entity, attribute, value in facts_rows:
        facts.setdefault(entity, {})[attribute] = value
    knowledge = knowledge_world.render(facts, biographies_per_entity=3, qa_documents_per_entity=1, sft_fraction=0.5, seed=0)
    modular = modular_task.make_task(7, [5, 9], 6, 10, n_train=20, n_test=8, n_corpus=10, seed=0)
    (root / "corpus.txt").write_text("\n".join(knowledge["corpus"] + modular["corpus"]) + "\n")
    paths = {}
    for name, rows in [*(("k_" + s, knowledge[s]) for s in ("train", "test_id", "test_ood", "cloze")),
                       *(("m_" + s, modular[s]) for s in ("train", "test_id", "test_ood"))]:
        paths[name] = root / f"{name}.jsonl"
        write_jsonl(paths[name], rows)
    tokenizer = train_tokenizer(texts_of([root / "corpus.txt"], list(paths.values())))
    return {"root": root, "facts": facts, "knowledge": knowledge, "modular": modular, "paths": paths, "tokenizer": tokenizer}


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_world, tmp_path_factory):
    """A tiny randomly initialised Llama with the world's tokenizer, saved like a real checkpoint."""
    import torch

    from infoflow.training import models
    from infoflow.training.pretrain import build_model

    torch.manual_seed(0)
    model = build_model(tiny_world["tokenizer"], "llama", hidden_size=32, intermediate_size=64, layers=2, heads=2, max_length=64)
    out = tmp_path_factory.mktemp("model")
    models.save(model, tiny_world["tokenizer"], out)
    return out
