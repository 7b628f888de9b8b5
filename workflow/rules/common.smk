import ast
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from snakemake.common.configfile import load_configfile

from infoflow.base_models import (
    SYNTHETIC_TASKS,
    base_folder,
    depth_methods,
    pretrained_models,
    pretrained_settings,
    with_depth_methods,
)
from infoflow.config import (
    ConfigError,
    check,
    check_unique_keys,
    describe_schema_error,
    overlay,
    task_seeds,
)
from infoflow.disk import (
    DiskBudgetError,
    check as check_disk,
    describe as describe_disk,
    estimate as estimate_disk,
)
from infoflow.resources import ProfileError, check as resource_check

# The workflow's own files, found from this file (not the working directory), so that another
# workflow can use it as a module; relative, so a results folder can move with its workflow.
WORKFLOW_ROOT = Path(
    os.path.relpath(Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parents[1])
)
DEFAULTS = WORKFLOW_ROOT / "config.yaml"

# Bad config stops here, before any job, with one line naming the key.
try:
    # Loading a config file keeps the last of two equal keys: the files are read again for them.
    for configfile_path in [DEFAULTS, *workflow.configfiles]:
        check_unique_keys(configfile_path)
    # config.yaml holds the defaults; every --configfile is an overlay on them, in order, then
    # --config (or, as a module, the host workflow's config). Snakemake's own merge of the files
    # knows no whole entries, so they are merged again here from the files.
    settings = workflow.config_settings
    overlays = [*map(load_configfile, settings.configfiles), dict(settings.config)]
    merged_config = overlay(
        load_configfile(DEFAULTS), *(overlays if settings.overwrite_config else [config])
    )
    config.clear()
    config.update(merged_config)
    validate(config, "../schemas/config.schema.yaml")
    check(config)
    # InfoRidge's depth analysis runs as SFT methods of their own (infoflow.base_models.depth_methods).
    config.update(with_depth_methods(config))
except WorkflowError as e:
    # Snakemake wraps the jsonschema ValidationError; it is the exception being handled there.
    cause = e.__cause__ or e.__context__
    sys.exit(f"config error: {describe_schema_error(cause) if cause else e}")
except ConfigError as e:
    sys.exit(f"config error: {e}")


def settings_key(*settings):
    """A short digest of `settings`: the folder name of what runs with equal settings share."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


KEY = "[0-9a-f]{10}"  # settings_key's digests


# Every output of a run lives in <results> = results/<run>/; what runs can share lives in
# resources/: in <world>, the synthetic world, its tokenizer and the base model pretrained on it (one
# folder per distinct setting), and the public data set splits.
RUN = config["run"]
WORLD_SETTINGS = ("knowledge_world", "modular_task", "base_model", "resume_every_steps")
RESULTS = f"results/{RUN}"
WORLD = f"resources/base-{settings_key(*(config.get(k) for k in WORLD_SETTINGS))}"


pathvars:
    results=RESULTS,
    world=WORLD,


TASKS = config["tasks"]
DATASET_TASKS = [t for t in TASKS if t in config.get("datasets", {})]
PRETRAINED = config["base_model"].get("pretrained")
SYNTHETIC = tuple(SYNTHETIC_TASKS)


def base_model(task, method=None):
    """The model `method` on `task` starts from (None: the task's base model): a hub id or local
    folder, or one pretrained here (infoflow.base_models.base_folder)."""
    return PRETRAINED or f"<world>/{base_folder(config, task, method)}"


def base_model_files(task, method=None):
    """A local base model is an input (its config.json), so replacing it reruns what depends on it."""
    return (
        [f"{base_model(task, method)}/config.json"]
        if not PRETRAINED or os.path.isdir(PRETRAINED)
        else []
    )


def base_inputs(wildcards):
    return base_model_files(wildcards.task, getattr(wildcards, "method", None))


METHODS = list(config["methods"])
RIDGE, FLUX, KEY_SHIFT = config["inforidge"], config["flux"], config["key_shift"]
MULTITOKEN = config["multitoken"]
ATTENTION = config["attention"]
TEST_SPLITS = ["test_id", "test_ood"]
# Fine-tuning checkpoints: point 00 is step 0, the last point the end of training.
POINTS = [f"{p:02d}" for p in range(config["inforidge"]["checkpoints"] + 1)]
# (task, method, seed) post-training runs: each method runs on its own `tasks` and the first
# `run_seeds` of each task's seeds (default: all), so cheap accuracy runs can have more seeds than
# costly ones.
RUNS = [
    (t, m, str(s))
    for m, entry in config["methods"].items()
    for t in entry.get("tasks", TASKS)
    for s in task_seeds(config, t)[: entry.get("run_seeds")]
]


def analysed(runs, tasks=None, run_seeds=None, methods=None):
    """The `runs` on `tasks` and `methods`, and on the first `run_seeds` seeds of each task (None:
    any); a method's own seeds are the first of its task's, so these are its first ones too."""
    return [
        (t, m, s)
        for t, m, s in runs
        if (tasks is None or t in tasks)
        and (methods is None or m in methods)
        and (run_seeds is None or s in map(str, task_seeds(config, t)[:run_seeds]))
    ]


# Runs whose InfoRidge trajectories (activations of every checkpoint) are extracted and analysed.
RIDGE_RUNS = analysed(RUNS, RIDGE.get("tasks"), RIDGE.get("run_seeds"))
# Runs whose InfoRidge residual scaling coefficients are fitted.
SCALED_RUNS = analysed(RIDGE_RUNS, methods=RIDGE["residual_scaling"]["methods"])
# The claims check's other estimator settings run on the SFT runs (claim 12).
KERNEL_RUNS = analysed(RIDGE_RUNS, methods=["sft"]) if RIDGE["kernel_checks"] else []
# Runs of the task whose token flux is analysed.
FLUX_RUNS = analysed(RUNS, [FLUX["task"]], FLUX.get("run_seeds"))
# Runs of the task whose key distribution is compared with the base model's.
KEY_SHIFT_RUNS = analysed(RUNS, [KEY_SHIFT["task"]], KEY_SHIFT.get("run_seeds"))
# Runs of InfoRidge's depth analysis: the task's SFT runs from base models of each depth (its own
# depth: the plain sft runs).
DEPTHS = None if PRETRAINED else RIDGE.get("depths")
DEPTH_METHODS = (
    [*depth_methods(config)]
    + (["sft"] if pretrained_settings(config, DEPTHS["task"])["layers"] in DEPTHS["layers"] else [])
    if DEPTHS
    else []
)
DEPTH_RUNS = analysed(RIDGE_RUNS, methods=DEPTH_METHODS)
# Runs whose attention to signal tokens is measured (claim 13).
ATTENTION_RUNS = analysed(
    RUNS, [ATTENTION["task"]], ATTENTION.get("run_seeds"), ATTENTION["methods"]
)


wildcard_constraints:
    task="|".join(TASKS),
    method="|".join(re.escape(m) for m in METHODS),
    seed=r"\d+",
    point=r"\d\d",
    # stage keys (settings_key)
    train=KEY,
    evaluation=KEY,
    extraction=KEY,
    mi=KEY,
    kernels=KEY,
    scaling=KEY,
    flux=KEY,
    key_shift=KEY,
    surrogates=KEY,
    base_evaluation=KEY,
    multitoken=KEY,
    attention=KEY,


def model_options():
    """The model-loading options (config model_loading) of every stage that loads a model."""
    loading = config["model_loading"]
    return f"--dtype {loading['dtype']}" + (
        " --trust-remote-code" if loading["trust_remote_code"] else ""
    )


MODEL_OPTIONS = model_options()
# Each model job claims its own GPU(s) on a shared machine (infoflow.devices); with no GPUs, or
# under SLURM (which sets CUDA_VISIBLE_DEVICES), the command runs as it is.
GPU_JOB = "python -m infoflow.devices --count {resources.gpu} -- "
# Post-training on sft.devices_per_job devices: torchrun starts one process per device
# (--standalone: a free local port, so concurrent jobs on one machine do not collide).
DEVICES_PER_JOB = config["sft"]["devices_per_job"]
LAUNCH = (
    f"torchrun --standalone --nproc_per_node {DEVICES_PER_JOB}" if DEVICES_PER_JOB > 1 else "python"
)
# The stages that load the base model itself; post-trained folders are local (no revision).
BASE_MODEL_OPTIONS = MODEL_OPTIONS + (
    f" --revision {config['base_model']['revision']}"
    if config["base_model"].get("revision")
    else ""
)
# Trainer reporting (none, tensorboard, wandb, mlflow) of every training stage, through the
# environment (infoflow.training.trainer.REPORT_TO_VARIABLE): not a param, so not a rerun trigger.
os.environ.update(INFOFLOW_REPORT_TO=config["training"]["report_to"])


def base_model_arg(wildcards, input):
    """`--model` of the stages that start from the base model: its folder, or the hub id."""
    return os.path.dirname(input.base[0]) if input.base else PRETRAINED


def data_file(task, split):
    """One task split's examples: JSON lines of the synthetic world, or Parquet built from the
    task's public data set entries (shared by every run whose entries for it are the same)."""
    if task in DATASET_TASKS:
        return f"resources/datasets/{task}/{split}-{settings_key(config['datasets'][task][split])}.parquet"
    return f"<world>/data/{task}/{split}.jsonl"


def test_files(wildcards):
    return [data_file(wildcards.task, split) for split in TEST_SPLITS]


def accuracy_groups(wildcards):
    """Accuracy per data set (data set tasks) or per attribute (knowledge world)."""
    return "source" if wildcards.task in DATASET_TASKS else "attribute"


# Method-entry keys that are not the method's parameters.
NOT_PARAMETERS = ("kind", "tasks", "run_seeds", "at_eval", "base_layers")


def method_args(entry):
    """A method entry's parameters as command-line tokens (infoflow.infosteer.steer / infoflow.training.lora)."""

    def text(value):
        return ",".join(map(str, value)) if isinstance(value, list) else str(value).lower()

    return " ".join(f"{k}={text(v)}" for k, v in entry.items() if k not in NOT_PARAMETERS)


def method_entry(wildcards):
    return config["methods"][wildcards.method]


def code(module):
    """The src files of `module` (dotted, e.g. "inforidge.mi") and of every infoflow module it
    imports, transitively, with their packages' __init__.py: a rule's inputs, so that editing any
    code a job runs reruns it (and nothing else)."""

    def source(name):
        path = WORKFLOW_ROOT.joinpath("src", *name.split("."))
        return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")

    found, todo = set(), ["infoflow", f"infoflow.{module}"]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo += [".".join(name.split(".")[:i]) for i in range(2, name.count(".") + 1)]  # packages
        for node in ast.walk(ast.parse(source(name).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "infoflow":
                todo.append(node.module)
                # `from infoflow.pkg import module` names modules; other names are attributes
                todo += [
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if source(f"{node.module}.{a.name}").exists()
                ]
    return sorted(str(source(name)) for name in found)


def result(path, paper, topic, caption, **labels):
    """`path` in the report (snakemake --report): under its paper and topic, with the caption
    workflow/report/<caption>.rst and `labels` telling it apart from the topic's other results."""
    return report(
        path, caption=f"../report/{caption}.rst", category=paper, subcategory=topic, labels=labels
    )


def run_result(path, paper, topic, caption, **labels):
    """A per-run output in the report, labelled by task, method and seed (and `labels`)."""
    return result(
        path, paper, topic, caption, task="{task}", method="{method}", seed="{seed}", **labels
    )


def check_profile():
    """Stop on a resource mistake in the profile, naming the rule and key (infoflow.resources)."""
    settings = workflow.resource_settings

    def plain(resources):
        return {key: getattr(value, "raw", value) for key, value in resources.items()}

    try:
        resource_check(
            rules={rule.name: plain(rule.resources) for rule in workflow.rules},
            local_rules=workflow._localrules,
            default_resources=plain(settings._parsed_default_resources or {}),
            rule_resources={r: plain(s) for r, s in settings._parsed_overwrite_resources.items()},
            limits=plain(workflow.global_resources),
        )
    except ProfileError as e:
        sys.exit(f"profile error: {e}")
