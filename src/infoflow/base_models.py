"""The base models pretrained here on the synthetic tasks' corpora, read off a run's config: which
folder of <world>/ each post-training run starts from, and with which settings each is pretrained
(the Snakefile's rules, infoflow.config's checks and infoflow.disk's estimate all read them here).

A shared base model learns the corpora of the tasks without a base_model.own_models entry; each task
with one gets its own. A method with base_layers starts from its task's base model pretrained again at
that depth: InfoRidge's depth analysis (inforidge.depths) adds one such SFT method per depth.
"""

SYNTHETIC_TASKS = {"knowledge": "knowledge_world", "modular": "modular_task"}  # task -> its config section
# The SFT methods of InfoRidge's depth analysis (inforidge.depths), one per depth.
DEPTH_METHOD = "sft_depth{}"


def pretrained_settings(config, task, layers=None):
    """The settings of the base model pretrained here that `task` starts from: base_model's, changed by
    the task's own_models entry (a task without one shares the base model), at `layers` where given."""
    base = config["base_model"]
    settings = {k: v for k, v in base.items() if k != "own_models"} | (base.get("own_models") or {}).get(task, {})
    return settings if layers is None else settings | {"layers": layers}


def base_folder(config, task, method=None):
    """The folder in <world>/ of the base model pretrained here that `method` on `task` starts from:
    model (shared), model-<task> (the task's own_models entry), with -layers<n> for a method whose
    base_layers differ from that model's depth."""
    folder = f"model-{task}" if task in (config["base_model"].get("own_models") or {}) else "model"
    layers = config["methods"][method].get("base_layers") if method else None
    return folder if layers in (None, pretrained_settings(config, task)["layers"]) else f"{folder}-layers{layers}"


def pretrained_models(config):
    """{folder in <world>/: (the tasks whose corpora it is pretrained on, its settings)} of every base
    model pretrained here: the shared one, each task's own, and each other depth a method starts
    from ({} with base_model.pretrained: nothing is pretrained here)."""
    if config["base_model"].get("pretrained"):
        return {}
    own = config["base_model"].get("own_models") or {}
    shared = [t for t in SYNTHETIC_TASKS if t not in own]
    models = {"model": (shared, pretrained_settings(config, None))} if shared else {}
    for task in SYNTHETIC_TASKS:
        starts = [(None, None)] + [(m, e["base_layers"]) for m, e in config["methods"].items()
                                   if e.get("base_layers") and task in e.get("tasks", config["tasks"])]
        for method, layers in starts:
            models[base_folder(config, task, method)] = ([task] if task in own else shared, pretrained_settings(config, task, layers))
    return models


def depth_methods(config):
    """The SFT methods of InfoRidge's depth analysis: for each depth of inforidge.depths.layers other than
    its task's base model's own, SFT from that task's base model pretrained again at that depth ({} with
    base_model.pretrained or no depths). The task's own depth is its plain SFT runs."""
    depths = config["inforidge"].get("depths")
    if not depths or config["base_model"].get("pretrained"):
        return {}
    task = depths["task"]
    own = pretrained_settings(config, task)["layers"]
    return {DEPTH_METHOD.format(n): {"kind": "sft", "tasks": [task], "base_layers": n} for n in depths["layers"] if n != own}


def with_depth_methods(config):
    """`config` with the methods of depth_methods() added to its methods (after check())."""
    return config | {"methods": config["methods"] | depth_methods(config)}
