"""Config checks beyond the JSON schema, and one-line messages for every config error.

The schema (workflow/schemas/config.schema.yaml) checks types, ranges and unknown keys; `check`
adds what a schema cannot say (relations between values, whether a local model folder holds a
model), and `check_unique_keys` the duplicate keys that loading a file drops unseen. All report the
offending key.
"""

import copy
import json
import os
import re

import yaml

from infoflow.base_models import SYNTHETIC_TASKS, depth_methods, pretrained_settings
from infoflow.world.adapters import entry_name, generic_problem
from infoflow.world.knowledge_world import ATTRIBUTES


class ConfigError(ValueError):
    """An invalid config value; the message names the key."""


# YAML 1.1 (PyYAML, so Snakemake) reads a number with an exponent but no dot, like 5e-4, as text.
UNDOTTED_EXPONENT = re.compile(r"[-+]?\d+[eE][-+]?\d+")


def describe_schema_error(error):
    """'key.path: problem' for a jsonschema ValidationError, on one line."""
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message.splitlines()[0]
    if error.validator == "additionalProperties":
        message = f"unknown key: {message}"
    elif error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        message = f"{error.instance!r} is not {error.schema['description']}"
    elif error.validator == "type" and isinstance(error.instance, str) and UNDOTTED_EXPONENT.fullmatch(error.instance):
        mantissa, exponent = error.instance.lower().split("e")
        message += f" (YAML reads {error.instance} as text: write {mantissa}.0e{exponent})"
    elif error.validator == "type" and isinstance(error.instance, bool) and "string" in error.validator_value:
        message += " (YAML reads yes, no, on, off, true and false unquoted as booleans: quote the word, e.g. 'yes')"
    return f"{path}: {message}"


# Sections whose entries an overlay replaces whole: a method or a task's data sets redefined in an
# overlay keeps none of the default entry's keys (a default `tasks: [knowledge]` would otherwise stay).
WHOLE_ENTRIES = ("methods", "datasets")


def overlay(defaults, *overlays, whole_entries=WHOLE_ENTRIES):
    """`defaults` with each of `overlays` merged over it in turn: mappings merge key by key, any
    other value (and any entry of a `whole_entries` section) replaces the default, and a key set to
    null (None) removes it, so an overlay can drop a default method. Returns a new dict; the inputs
    are left as they are."""
    merged = copy.deepcopy(defaults)
    for layer in overlays:
        for key, value in layer.items():
            if value is None:
                merged.pop(key, None)
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = overlay(merged[key], value, whole_entries=()) if key not in whole_entries else {
                    **merged[key], **copy.deepcopy(value)}
                merged[key] = {k: v for k, v in merged[key].items() if v is not None}
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def check_unique_keys(path):
    """Raise ConfigError for a key written twice in one mapping of the YAML (or JSON) file `path`:
    loading keeps the last one silently, so a duplicated method name would drop a method unseen."""

    def walk(node, keys):
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, [*keys, str(index)])
        elif isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if (key.tag, key.value) in seen:  # the tag tells 1 from '1'
                    raise ConfigError(
                        f"{'.'.join(keys) or '(top level)'}: duplicate key {key.value!r} "
                        f"({os.path.relpath(path)}, line {key.start_mark.line + 1}); give each key once"
                    )
                seen.add((key.tag, key.value))
                walk(value, [*keys, str(key.value)])

    with open(path, encoding="utf-8") as file:
        try:
            root = yaml.compose(file, Loader=yaml.SafeLoader)
        except yaml.YAMLError:  # JSON that is not YAML too (tab-indented), which Snakemake reads as JSON
            return
    walk(root, [])


def looks_local(pretrained):
    """Whether a `base_model.pretrained` value names a folder: a hub id is 'name' or 'owner/name'."""
    return pretrained.startswith(("/", "./", "../", "~")) or pretrained.count("/") > 1 or os.path.isdir(pretrained)


def check_local_model(pretrained):
    """Raise ConfigError if `pretrained` names a folder that holds no saved model."""
    if pretrained.startswith("~"):  # neither Snakemake nor transformers expands it
        raise ConfigError(f"base_model.pretrained: {pretrained}: '~' is not expanded; write the folder's full path")
    if not os.path.isdir(pretrained):
        raise ConfigError(f"base_model.pretrained: local model folder {pretrained} does not exist")
    if not os.path.isfile(os.path.join(pretrained, "config.json")):
        raise ConfigError(f"base_model.pretrained: local model folder {pretrained} has no config.json (not a saved model)")


def known_depth(base):
    """Decoder layers of the base model where known before any job: one built here, or a local
    folder's config.json (GPT-2 calls them n_layer); None for a hub id."""
    pretrained = base.get("pretrained")
    if not pretrained:
        return base["layers"]
    if looks_local(pretrained):
        with open(os.path.join(pretrained, "config.json"), encoding="utf-8") as f:
            saved = json.load(f)
        return saved.get("num_hidden_layers", saved.get("n_layer"))
    return None




def task_seeds(config, task):
    """The seeds of `task`'s runs: `seeds`, or the task's own list where seeds are given per task."""
    seeds = config["seeds"]
    return seeds[task] if isinstance(seeds, dict) else seeds


def test_sizes(config):
    """Test examples per split of each synthetic task (data set tasks are known only once read)."""
    sizes = {}
    if "knowledge_world" in config:
        world = config["knowledge_world"]
        sizes["knowledge"] = len(ATTRIBUTES) * (world["entities"] - round(world["sft_fraction"] * world["entities"]))
    if "modular_task" in config:
        sizes["modular"] = config["modular_task"]["test_examples"]
    return sizes


def check_dataset_entries(datasets):
    """Raise ConfigError for a generic data set entry whose keys do not fit together, or for two
    entries of a split whose rows would share ids (the same data set name)."""
    for task, splits in datasets.items():
        for split, entries in splits.items():
            read = [(entry_name(entry), entry["split"]) for entry in entries]
            for position, entry in enumerate(entries):
                where = f"datasets.{task}.{split}.{position}"
                problem = generic_problem(entry)
                if problem:
                    raise ConfigError(f"{where}.{problem[0]}: {problem[1]}")
                if read[position] in read[:position]:
                    raise ConfigError(
                        f"{where}: reads {read[position][0]} split {read[position][1]} as entry {read.index(read[position])} does, "
                        "so their rows would share ids; give a generic entry its own name"
                    )


def check_sharding(config):
    """Raise ConfigError for an sft.sharding that the job's devices, a method or the precision cannot
    train with (infoflow.training.distributed)."""
    sft = config["sft"]
    sharding, devices = sft.get("sharding", "none"), sft.get("devices_per_job", 1)
    if sharding != "none" and devices == 1:
        raise ConfigError(f"sft.sharding: {sharding} shares a model between the devices of a job, and "
                          "sft.devices_per_job is 1; set devices_per_job above 1 or sharding: none")
    lora = [name for name, method in config["methods"].items() if method["kind"] == "lora"]
    if sharding == "fsdp" and lora:
        raise ConfigError(f"methods.{lora[0]}: lora cannot train under sft.sharding: fsdp (its adapters are "
                          "merged from whole weights); use sharding none or deepspeed")
    if sharding == "deepspeed" and sft.get("precision") == "bf16-pure":
        raise ConfigError("sft.precision: bf16-pure cannot train under sft.sharding: deepspeed, whose ZeRO "
                          "optimizer keeps float32 master weights; use bf16-mixed")


def check(config):
    """Raise ConfigError for inconsistent values the schema accepts one by one."""
    datasets = config.get("datasets", {})
    check_dataset_entries(datasets)
    check_sharding(config)
    for task in config["tasks"]:
        section = SYNTHETIC_TASKS.get(task)
        if section is None and task not in datasets:
            raise ConfigError(f"tasks: {task} is neither knowledge, modular nor a task under datasets")
        if section is not None and section not in config:
            raise ConfigError(f"{section}: missing, and task {task} needs it")
        if task not in config["sft"]["epochs"]:
            raise ConfigError(f"sft.epochs: no epochs for task {task}")
    if "modular_task" in config:
        modular = config["modular_task"]
        if modular["id_modulus"] in modular["ood_moduli"]:
            raise ConfigError(f"modular_task.ood_moduli: must not contain the ID modulus {modular['id_modulus']}")
    for task in config["tasks"]:
        if isinstance(config["seeds"], dict) and task not in config["seeds"]:
            raise ConfigError(f"seeds: no seeds for task {task}")
        seeds = task_seeds(config, task)
        if len(set(seeds)) != len(seeds):
            key = f"seeds.{task}" if isinstance(config["seeds"], dict) else "seeds"
            raise ConfigError(f"{key}: duplicate seeds in {seeds}")
    base = config["base_model"]
    pretrained = base.get("pretrained")
    if pretrained and looks_local(pretrained):
        check_local_model(pretrained)
    if base.get("revision") and (not pretrained or looks_local(pretrained)):
        raise ConfigError("base_model.revision: only a hub `pretrained` model has revisions (this one is local)")
    if not pretrained and base["hidden_size"] % base["heads"]:
        raise ConfigError(f"base_model.hidden_size: {base['hidden_size']} is not divisible by base_model.heads {base['heads']}")
    # With a `pretrained` base model nothing is pretrained here, so own_models (a default an overlay
    # inherits) has nothing to say.
    for task, changes in ({} if pretrained else base.get("own_models") or {}).items():
        if task not in SYNTHETIC_TASKS:
            raise ConfigError(f"base_model.own_models.{task}: only the synthetic tasks ({', '.join(SYNTHETIC_TASKS)}) are pretrained here")
        own = pretrained_settings(config, task)
        if own["hidden_size"] % own["heads"]:
            raise ConfigError(f"base_model.own_models.{task}: hidden_size {own['hidden_size']} is not divisible by heads {own['heads']}")
    depth = known_depth(base)
    for name, method in config["methods"].items():
        layers = method.get("layers")
        if depth is not None and isinstance(layers, list) and max(layers) >= depth:
            raise ConfigError(
                f"methods.{name}.layers: index {max(layers)} is beyond the base model's {depth} layers (0..{depth - 1})"
            )
        unknown = set(method.get("tasks", [])) - set(config["tasks"])
        if unknown:
            raise ConfigError(f"methods.{name}.tasks: {sorted(unknown)} not in tasks {config['tasks']}")
        if method.get("base_layers"):
            if pretrained:
                raise ConfigError(f"methods.{name}.base_layers: only a base model pretrained here has a depth to change (base_model.pretrained is set)")
            if set(method.get("tasks", config["tasks"])) - set(SYNTHETIC_TASKS):
                raise ConfigError(f"methods.{name}.base_layers: its tasks must be synthetic ({', '.join(SYNTHETIC_TASKS)}); give it `tasks`")
    ridge = config["inforidge"]
    unknown = set(ridge.get("tasks") or []) - set(config["tasks"])
    if unknown:
        raise ConfigError(f"inforidge.tasks: {sorted(unknown)} not in tasks {config['tasks']}")
    depths = ridge.get("depths")
    if depths and not pretrained:
        if depths["task"] not in set(ridge.get("tasks") or config["tasks"]) & set(SYNTHETIC_TASKS):
            raise ConfigError(f"inforidge.depths.task: {depths['task']} is not a synthetic task whose runs InfoRidge analyses (inforidge.tasks)")
        taken = set(depth_methods(config)) & set(config["methods"])
        if taken:
            raise ConfigError(f"methods: {sorted(taken)} are the names of the depth analysis's methods (inforidge.depths); rename them")
    if ridge["mi"]["examples"] > ridge["extraction"]["examples"]:
        raise ConfigError(
            f"inforidge.mi.examples: {ridge['mi']['examples']} is more than the "
            f"{ridge['extraction']['examples']} examples extracted (inforidge.extraction.examples)"
        )
    if ridge["mi"]["sample_seeds"] > 1 and ridge["mi"]["examples"] == ridge["extraction"]["examples"]:
        # Each seed would draw all the extracted examples: the bands would lose their sampling part.
        raise ConfigError(
            f"inforidge.mi.examples: {ridge['mi']['examples']} is not below inforidge.extraction.examples "
            f"({ridge['extraction']['examples']}) with {ridge['mi']['sample_seeds']} sample_seeds: every seed draws "
            "the same examples; use fewer MI examples or extract more"
        )
    for task, size in test_sizes(config).items():
        if task in config["tasks"] and ridge["extraction"]["examples"] > size:
            raise ConfigError(
                f"inforidge.extraction.examples: {ridge['extraction']['examples']} is more than the {size} test examples of task {task}"
            )
    unknown = set(ridge["residual_scaling"]["methods"]) - set(config["methods"])
    if unknown:
        raise ConfigError(f"inforidge.residual_scaling.methods: {sorted(unknown)} not in methods")
    for section in ("flux", "key_shift", "multitoken"):
        if config[section]["task"] not in config["tasks"]:
            raise ConfigError(f"{section}.task: {config[section]['task']} is not in tasks {config['tasks']}")
    attention = config["attention"]
    unknown = set(attention["methods"]) - set(config["methods"])
    if unknown:
        raise ConfigError(f"attention.methods: {sorted(unknown)} not in methods")
    size = test_sizes(config).get(attention["task"])
    if attention["task"] in config["tasks"] and size is not None and attention["examples"] > size:
        raise ConfigError(f"attention.examples: {attention['examples']} is more than the {size} test examples of task {attention['task']}")
    for section in ("flux", "multitoken"):
        if config[section]["prompts"] == "cloze" and config[section]["task"] != "knowledge":
            raise ConfigError(f"{section}.prompts: cloze prompts exist for the knowledge task only, not {config[section]['task']}")
    multitoken = config["multitoken"]
    if multitoken["mi_examples"] > multitoken["examples"]:
        raise ConfigError(f"multitoken.mi_examples: {multitoken['mi_examples']} is more than the {multitoken['examples']} prompts continued")

