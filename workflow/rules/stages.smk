# Where each stage's outputs live: what runs of equal settings share (resources/base-<key>/runs/,
# docs/experiments.md#shared-run-folders), and the disk a config writes.
from infoflow.disk import (
    DiskBudgetError,
    check as check_disk,
    describe as describe_disk,
    estimate as estimate_disk,
)


def sft_settings(task):
    """The post-training settings of one task: editing another task's epochs does not rerun it."""
    settings = dict(config["sft"])
    settings["epochs"] = config["sft"]["epochs"][task]
    settings.setdefault("max_length", 0)  # 0: no limit
    settings.setdefault("precision", "auto")
    return settings


def without(entry, *keys):
    return {k: v for k, v in entry.items() if k not in keys}


# What a flux or key-shift job reads of its section (which run seeds are analysed is not its concern).
FLUX_JOB = without(FLUX, "render_prompts", "run_seeds")
KEY_SHIFT_JOB = without(KEY_SHIFT, "run_seeds")
# The multi-token job's estimator: InfoRidge's kernel, width and Renyi order.
MULTITOKEN_ESTIMATOR = {key: RIDGE["mi"][key] for key in ("kernel", "sigma", "alpha")}
ATTENTION_JOB = without(ATTENTION, "methods", "run_seeds")
SURROGATES = config["surrogates"]
SURROGATES_JOB = without(SURROGATES, "top_vectors")  # the table's, not the job's


def stage_settings(task, method=None):
    """What each stage's outputs for `task` (and `method`) depend on, beyond the base model and the
    stages before it: the key of its folder (`stage_keys`). Every setting a stage's job gets as a
    param is here too: a param outside the key would rerun the job in a folder other runs share."""
    loading = config["model_loading"]
    tests = [data_file(task, split) for split in TEST_SPLITS]
    settings = {
        "evaluation": (tests, config["evaluation"], loading),
        "base_evaluation": (
            tests,
            data_file(task, "train"),
            config["evaluation"],
            config["base_evaluation"],
            loading,
        ),
        "extraction": (tests, RIDGE["extraction"], loading),
        "mi": (RIDGE["mi"], RIDGE["probe_seed"]),
        "kernels": (
            RIDGE["kernel_checks"],
            [RIDGE["mi"][k] for k in ("examples", "sample_seeds", "alpha")],
        ),
        "scaling": (tests, without(RIDGE["residual_scaling"], "methods"), loading),
        "flux": (
            data_file(FLUX["task"], FLUX["prompts"]),
            FLUX_JOB,
            loading,
        ),
        "key_shift": (data_file(KEY_SHIFT["task"], "test_id"), KEY_SHIFT_JOB, loading),
        "multitoken": (
            data_file(MULTITOKEN["task"], MULTITOKEN["prompts"]),
            MULTITOKEN,
            MULTITOKEN_ESTIMATOR,
            loading,
        ),
        "attention": (tests, ATTENTION_JOB, loading),
        "surrogates": (SURROGATES_JOB, loading),
    }
    if method:
        entry = without(config["methods"][method], "tasks", "run_seeds")
        train = data_file(task, "train")
        settings["train"] = (train, sft_settings(task), entry, RIDGE["checkpoints"], loading)
    return settings


def stage_keys(task, method=None):
    return {stage: settings_key(value) for stage, value in stage_settings(task, method).items()}


# Each post-training run (task, method, seed) and everything measured on it live in <world>/runs/,
# each stage in a folder named by the key of its settings (and nested in the folder of the stages it
# reads): a run of another name with equal settings finds them there, and changing one method's or
# one stage's settings makes new folders for that method or stage, and for those after it, only.
CHAIN = "<world>/runs/{task}/{method}/{train}/seed{seed}"
EVALUATION = f"{CHAIN}/eval-{{evaluation}}"
ACTIVATIONS = f"{CHAIN}/activations-{{extraction}}"
RIDGE_ANALYSIS = f"{ACTIVATIONS}/ridge-{{mi}}"
KERNELS = f"{ACTIVATIONS}/kernels-{{kernels}}"
RESIDUAL_SCALING = f"{CHAIN}/residual_scaling-{{scaling}}"
TOKEN_FLUX = f"{CHAIN}/flux-{{flux}}"
KEY_SHARES = f"{CHAIN}/key_shares-{{key_shift}}"
ATTENTION_MASSES = f"{CHAIN}/attention-{{attention}}"
# The columns of results/<run>/runs.csv: each stage's folder, and the runs it has one for.
STAGE_FOLDERS = {
    "folder": (CHAIN, RUNS),
    "evaluation": (EVALUATION, RUNS),
    "activations": (ACTIVATIONS, RIDGE_RUNS),
    "ridge": (RIDGE_ANALYSIS, RIDGE_RUNS),
    "kernels": (KERNELS, KERNEL_RUNS),
    "residual_scaling": (RESIDUAL_SCALING, SCALED_RUNS),
    "flux": (TOKEN_FLUX, FLUX_RUNS),
    "key_shares": (KEY_SHARES, KEY_SHIFT_RUNS),
    "attention": (ATTENTION_MASSES, ATTENTION_RUNS),
}


def keep_or_temp(checkpoints):
    """InfoRidge checkpoint folders are intermediate: deleted once extracted, unless kept (config)."""
    return [
        directory(folder) if RIDGE["keep_checkpoints"] else temp(directory(folder))
        for folder in checkpoints
    ]


def run_files(pattern, runs=RUNS, **wildcards):
    """`pattern` filled for every (task, method, seed) of `runs`, with the stage keys of each (and
    any extra wildcard lists)."""
    return [
        path
        for task, method, seed in runs
        for path in expand(
            pattern, task=task, method=method, seed=seed, **stage_keys(task, method), **wildcards
        )
    ]


def run_index():
    """A row per post-training run: its folder in <world>/runs/ and the folder of each stage's
    outputs there (empty where the stage does not run on it)."""

    def folder(pattern, runs, run):
        if run not in runs:
            return ""
        task, method, seed = run
        filled = expand(pattern, task=task, method=method, seed=seed, **stage_keys(task, method))[0]
        return filled.replace("<world>", WORLD)

    return [
        dict(zip(("task", "method", "seed"), run))
        | {column: folder(*stage, run) for column, stage in STAGE_FOLDERS.items()}
        for run in RUNS
    ]


def bytes_under(folders):
    return sum(
        f.stat().st_size
        for folder in folders
        if os.path.isdir(folder)
        for f in Path(folder).rglob("*")
        if f.is_file()
    )


def check_disk_budget():
    """Before any job: print the disk this config writes (infoflow.disk; a fresh run's, so an upper
    bound when runs share folders), and stop in one line if the most at once exceeds disk_budget_gb
    or the free space. Once, in the main process (not again in every cluster job)."""
    if not workflow.is_main_process:
        return
    settings = workflow.resource_settings
    # Runs holding checkpoints at once: those training and those awaiting their (prioritised)
    # extraction; all of them when no job count is given (e.g. --rulegraph).
    jobs = settings.nodes or settings.cores
    disk = estimate_disk(
        config, len(RUNS), len(RIDGE_RUNS), concurrent_runs=2 * jobs if jobs else None
    )
    print(describe_disk(disk), file=sys.stderr)
    # What a rerun finds on disk already is not written again (a fresh run's estimate otherwise).
    shared = [f"{WORLD}/{part}" for part in ("model", "data", "base")]
    written = bytes_under([RESULTS, *shared, *(row["folder"] for row in run_index())])
    try:
        check_disk(disk, "resources", config["disk_budget_gb"], written)
    except DiskBudgetError as e:
        sys.exit(f"disk error: {e}")
