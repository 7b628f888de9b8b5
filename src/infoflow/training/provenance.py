"""The provenance of a run: the code, libraries, config, base model, data and device that made it.

Writes one JSON object:
  code        the pipeline's git commit and whether its tree has changes not committed (`dirty`),
              from the repository the package is run from; null with a `reason` outside a git checkout
  python, packages   the interpreter's and the libraries' versions (null: not installed)
  config      the merged config file and the sha256 of its canonical JSON dump (sorted keys, no
              spacing), so layout and comments do not change it
  base_models one entry per base model the run starts from (tasks with base models of their own
              have one each): a hub model's id, the revision asked for (base_model.revision) and the
              commit it resolves to, from the local hub cache or else the hub when online (null with a
              `reason` when neither can say); a local folder's sha256 over its config.json and *.safetensors
  data        each data file's sha256, and the source and revision of every public data set entry
  device      the GPUs' names (or 'cpu'), the dtype that model_loading.dtype resolves to here and the
              training precision sft.precision resolves to
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from infoflow import cli
from infoflow.io import DataError, write_json
from infoflow.training import models

PACKAGES = ("torch", "transformers", "accelerate", "peft", "datasets", "polars", "pyarrow", "numpy", "snakemake")
# The checkout the pipeline's code runs from (a package installed elsewhere is not one).
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_state(folder=PACKAGE_DIR):
    """{'commit', 'dirty'} of the git checkout holding `folder`, or both null and the `reason`."""

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = git("status", "--porcelain")  # untracked files count: a new module changes the code run
    except FileNotFoundError:
        return {"commit": None, "dirty": None, "reason": "git is not installed"}
    except subprocess.CalledProcessError as e:
        return {"commit": None, "dirty": None, "reason": f"{folder} is not in a git checkout ({e.stderr.strip()})"}
    return {"commit": commit, "dirty": bool(changes.strip())}


def package_versions():
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def canonical_hash(config):
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def folder_hash(folder):
    """sha256 over the names and contents of a model folder's config.json and *.safetensors."""
    names = sorted(name for name in os.listdir(folder) if name == "config.json" or name.endswith(".safetensors"))
    if "config.json" not in names:
        raise DataError(f"{folder}: no config.json (not a saved model)")
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\0{sha256_file(os.path.join(folder, name))}\n".encode())
    return digest.hexdigest()


def hub_commit(hub_id, revision):
    """{'commit'} that `revision` (None: main) of a hub model resolves to, or null and the `reason`."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache

    cached = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    if isinstance(cached, str):  # <cache>/models--owner--name/snapshots/<commit>/config.json
        return {"commit": Path(cached).parent.name}
    if constants.HF_HUB_OFFLINE:
        return {"commit": None, "reason": "not in the local hub cache, and the hub is offline (HF_HUB_OFFLINE)"}
    try:
        return {"commit": HfApi().model_info(hub_id, revision=revision).sha}
    except Exception as e:  # noqa: BLE001 - any hub failure is recorded, it must not fail the run
        return {"commit": None, "reason": f"the hub cannot say ({(str(e) or type(e).__name__).splitlines()[0]})"}


def base_model(model, revision):
    if os.path.isdir(model):
        return {"path": model, "content_sha256": folder_hash(model)}
    return {"hub_id": model, "revision": revision, **hub_commit(model, revision)}


def dataset_entries(config):
    """The source and revision of every public data set entry (config `datasets`)."""
    return [
        {"task": task, "split": split, "dataset": entry["dataset"], "source": entry["source"], "revision": entry.get("revision")}
        for task, splits in config.get("datasets", {}).items()
        for split, entries in splits.items()
        for entry in entries
    ]


def devices():
    import torch

    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ["cpu"]


def read_config(path):
    with open(path, encoding="utf-8") as f:
        try:
            config = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise DataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_loading"), dict) or "dtype" not in config["model_loading"]:
        raise DataError(f"{path}: not a merged config (no model_loading.dtype)")
    return config


def provenance(config_path, base_models, data_files, repo=PACKAGE_DIR):
    config = read_config(config_path)
    dtype = config["model_loading"]["dtype"]
    return {
        "code": git_state(repo),
        "python": platform.python_version(),
        "packages": package_versions(),
        "config": {"path": str(config_path), "sha256": canonical_hash(config)},
        "base_models": [base_model(str(model), config.get("base_model", {}).get("revision")) for model in base_models],
        "data": {
            "files": [{"path": str(path), "sha256": sha256_file(path)} for path in data_files],
            "datasets": dataset_entries(config),
        },
        "device": {"devices": devices(), "dtype": dtype, "resolved_dtype": str(models.resolve_dtype(dtype)).removeprefix("torch."),
                   "training_precision": models.resolve_precision(config.get("sft", {}).get("precision", "auto"))},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the merged config (YAML or JSON)")
    parser.add_argument("--base-models", nargs="+", required=True, help="the base models' folders or hub id")
    parser.add_argument("--data", nargs="*", default=[], help="the data files the run reads")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    cli.setup()
    for path in [args.config, *args.data]:
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file")
    write_json(args.out, provenance(args.config, args.base_models, args.data))


if __name__ == "__main__":
    cli.run(main)
