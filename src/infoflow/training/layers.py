"""The FFN key vector of each decoder layer of a Hugging Face causal LM (InfoSteer's "key").

An FFN is read as key-value memory: FFN(h) = sum_i k_i v_i, where the key k is the vector that
multiplies the memory matrix (arXiv 2507.05158, Sec. 4.4): the input of the MLP's output
projection, so hooks on that module see k as their input. FFN_LAYOUTS names the MLPs known here.
"""

from torch import nn

from infoflow.io import DataError

LAYER_GROUPS = ("early", "middle", "late")
# The child modules of each known MLP layout; the last is the one whose input is the key.
FFN_LAYOUTS = (
    ("gate_proj", "up_proj", "down_proj"),  # Llama, Qwen2, Mistral, Gemma-2: k = act(gate_proj(h)) * up_proj(h)
    ("gate_up_proj", "down_proj"),  # Phi-3: the same k, gate and up fused in one matrix
    ("c_fc", "c_proj"),  # GPT-2: k = act(c_fc(h))
    ("dense_h_to_4h", "dense_4h_to_h"),  # GPT-NeoX (Pythia): k = act(dense_h_to_4h(h))
    ("fc1", "fc2"),  # Phi-2: k = act(fc1(h))
)


class UnsupportedModel(DataError):
    """The model's layout is not one this module knows (a DataError: a pipeline stage says so in one line)."""


def child_names(module):
    return ", ".join(name for name, _ in module.named_children()) or "none"


def decoder_layers(model):
    base = model.base_model
    for name in ("layers", "h"):
        if hasattr(base, name):
            return list(getattr(base, name))
    raise UnsupportedModel(
        f"{type(model).__name__}: no decoder layer list (.layers or .h) in {type(base).__name__} (its modules: {child_names(base)})"
    )


def memory_modules(model):
    """Per decoder layer, the module whose input is the key vector (the MLP's output projection)."""
    modules = []
    for index, layer in enumerate(decoder_layers(model)):
        mlp = getattr(layer, "mlp", None)
        children = dict(mlp.named_children()) if mlp is not None else {}
        layout = next((names for names in FFN_LAYOUTS if all(n in children for n in names)), None)
        if layout is None:
            if mlp is None:
                found = f"no .mlp (its modules: {child_names(layer)})"
            else:
                found = f"MLP {type(mlp).__name__} has modules {child_names(mlp)}"
            known = "; ".join("+".join(names) for names in FFN_LAYOUTS)
            raise UnsupportedModel(f"{type(model).__name__}: layer {index}: {found}, not a known FFN layout ({known})")
        modules.append(children[layout[-1]])
    return modules


def memory_vectors(module):
    """[d_m, d]: row i is memory vector v_i of a memory module (memory_modules), the vector that key k_i
    scales: a column of an nn.Linear weight ([out, in]), a row of GPT-2's Conv1D weight ([in, out])."""
    weight = module.weight
    return weight.T if isinstance(module, nn.Linear) else weight


def final_norm(model):
    """The norm Hugging Face applies to the last block's output before the LM head."""
    base = model.base_model
    names = ("norm", "ln_f", "final_layer_norm", "final_layernorm")  # Llama and most, GPT-2, GPT-NeoX, Phi-2
    for name in names:
        if hasattr(base, name):
            return getattr(base, name)
    found = ", ".join(name for name, _ in base.named_children())
    raise UnsupportedModel(f"{type(model).__name__}: no final norm (.{', .'.join(names)}) among {type(base).__name__}'s modules: {found}")


def group_layers(group, n_layers):
    """Layer indices of 'early', 'middle' or 'late': thirds of the depth (the paper's 1-8, 9-16, 17-24 of 24)."""
    bounds = [0, round(n_layers / 3), round(2 * n_layers / 3), n_layers]
    index = LAYER_GROUPS.index(group)
    return list(range(bounds[index], bounds[index + 1]))


def resolve_layers(spec, n_layers):
    """Sorted layer indices for 'all', a group name, groups joined by '+', or a list of indices."""
    if spec == "all":
        return list(range(n_layers))
    if isinstance(spec, str):
        groups = spec.split("+")
        unknown = [g for g in groups if g not in LAYER_GROUPS]
        if unknown:
            raise ValueError(f"unknown layer group '{unknown[0]}' (expected all, {', '.join(LAYER_GROUPS)} or a '+' of them)")
        return sorted({i for g in groups for i in group_layers(g, n_layers)})
    layers = sorted(set(spec))
    if not layers or layers[0] < 0 or layers[-1] >= n_layers:
        raise ValueError(f"layer indices {list(spec)} outside 0..{n_layers - 1}")
    return layers
