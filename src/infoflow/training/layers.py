"""The FFN key vector of each decoder layer of a Hugging Face causal LM (InfoSteer's "key").

An FFN is read as key-value memory: FFN(h) = sum_i k_i v_i, where the key k is the vector that
multiplies the memory matrix (arXiv 2507.05158, Sec. 4.4). For gated MLPs (Llama, Qwen2,
Gemma-2, Mistral) k = act(gate_proj(h)) * up_proj(h) is the input of `down_proj`; for GPT-2 it is
the activation output, the input of `mlp.c_proj`. Hooks on these modules see k as their input.
"""

LAYER_GROUPS = ("early", "middle", "late")


class UnsupportedModel(ValueError):
    """The model's FFN layout is not one this module knows."""


def decoder_layers(model):
    base = model.base_model
    for name in ("layers", "h"):
        if hasattr(base, name):
            return list(getattr(base, name))
    raise UnsupportedModel(f"{type(model).__name__}: no decoder layer list (.layers or .h) found")


def memory_modules(model):
    """Per decoder layer, the module whose input is the key vector (down_proj or mlp.c_proj)."""
    modules = []
    for index, layer in enumerate(decoder_layers(model)):
        mlp = getattr(layer, "mlp", None)
        if all(hasattr(mlp, m) for m in ("gate_proj", "up_proj", "down_proj")):
            modules.append(mlp.down_proj)
        elif all(hasattr(mlp, m) for m in ("c_fc", "c_proj")):
            modules.append(mlp.c_proj)
        else:
            raise UnsupportedModel(
                f"{type(model).__name__}: layer {index} has no gated (gate/up/down_proj) or GPT-2 (c_fc/c_proj) MLP"
            )
    return modules


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
