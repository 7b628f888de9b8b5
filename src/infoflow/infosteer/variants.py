"""InfoSteer's fine-grained variants (Sec. 4.3, App. B; Tables 6 and 7) as steering methods.

Each is a Steering of infoflow.infosteer.steer, whose steering_class maps the config kinds to these
classes. What the paper leaves open is a parameter (docs/methods.md gives the paper's text for each):

  semantic    the memory vectors of each steered layer clustered hierarchically by cosine distance into
              at most `groups` groups (`linkage`); the intervention's adjustment of key i is scaled by
              its group's beta: k_i <- k_i + beta_g dk_i (App. B.1; our reading of "a factor beta_g
              applied to the adjustment");
  activation  the same, each key clustered by its activation pattern: its values at the prompt tokens
              of `dev_examples` training examples (drawn with `dev_seed`) under the starting model;
    beta      'specialisation' (default): beta_g is the group's mean surrogate specialisation over that
              of all keys, so the mean beta over keys is 1: the intervention's change is kept on
              average and moved toward the groups of specialised vectors; 'generality': the same with
              1 - specialisation; 'uniform': every beta 1, the plain intervention (the control);
  selected    the intervention, then the keys of the `top` fraction of memory vectors with the highest
              score lam1 H(P_i) + lam2 KL(P_i || Q) amplified: k_i <- (1 + gamma) k_i (App. B.2). Q
              (`target`): 'answers' (default), the token distribution of the training answers (mixed
              with TARGET_SMOOTHING of the uniform one, so KL is finite); 'mean', the layer's mean
              surrogate; 'uniform'. lam1 = lam2 = -1 (default) favours vectors specialised on the
              answers' tokens;
  entmax      a regulariser: loss - lam x sum over steered layers of a surrogate entropy per token:
              'output' (default), H(softmax(FFN(h) W_decode)), the entropy of the FFN output decoded,
              sum_i k_i phi_i (App. B.2's decomposition); 'active', sum_i q_i H(P_i) with
              q = |k| / sum |k|, the key-weighted entropy of the surrogates of the active keys.

Surrogates (P_i, H, specialisation) are infoflow.infosteer.surrogates', read through the final norm
with `final_norm`. A variant's state (groups and betas, or the selected keys) is fixed on the model
the run starts from and recorded with the method, so at_eval decodes with the same factors.
"""

import math

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage as hierarchy
from scipy.spatial.distance import pdist

from infoflow.infosteer.steer import EPS, Steering, masked_mean
from infoflow.infosteer.surrogates import decoder_norm, layer_statistics, specialisation, surrogate_statistics
from infoflow.sampling import sample
from infoflow.training.layers import memory_modules, memory_vectors, resolve_layers
from infoflow.training.sft_data import IGNORE_INDEX, PadCollator

BETA_RULES = ("specialisation", "generality", "uniform")
LINKAGES = ("average", "complete", "single")
TARGETS = ("answers", "mean", "uniform")
READINGS = ("output", "active")
TARGET_SMOOTHING = 0.01
# Each variant's own parameters and their defaults (the intervention's p, alpha, ... are Steering's).
GROUPED = {"groups": 8, "beta": "specialisation", "linkage": "average", "final_norm": False, "dev_examples": 64, "dev_seed": 0}
SELECTED = {"top": 0.01, "gamma": 0.5, "lam1": -1.0, "lam2": -1.0, "target": "answers", "final_norm": False}
ENTMAX = {"reading": "output", "final_norm": False}


def one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}: unknown '{value}' (expected one of {', '.join(allowed)})")


def at_least(name, value, low):
    if value < low:
        raise ValueError(f"{name}: {value} must be >= {low}")


def settings(defaults, params):
    """The variant's own parameters of `params` over `defaults`, checked (ValueError naming the key)."""
    found = {**defaults, **{k: v for k, v in params.items() if k in defaults}}
    for name, allowed in (("beta", BETA_RULES), ("linkage", LINKAGES), ("target", TARGETS), ("reading", READINGS)):
        if name in found:
            one_of(name, found[name], allowed)
    for name, low in (("groups", 1), ("dev_examples", 1), ("gamma", 0)):
        if name in found:
            at_least(name, found[name], low)
    if "top" in found and not 0 < found["top"] < 1:
        raise ValueError(f"top: {found['top']} must lie in (0, 1)")
    return found


def steered_layers(model, params):
    return resolve_layers(params.get("layers", "all"), len(memory_modules(model)))


def cluster(features, groups, method):
    """Group labels 0..g-1 (g <= groups) of the rows of `features` [n, m]: hierarchical clustering by
    cosine distance, cut into at most `groups` clusters (fewer where distances tie)."""
    if groups == 1 or len(features) < 2:
        return np.zeros(len(features), dtype=int)
    distances = np.nan_to_num(pdist(np.asarray(features, dtype=np.float64), "cosine"), nan=1.0)  # a zero row: as if orthogonal
    labels = fcluster(hierarchy(distances, method), t=groups, criterion="maxclust")
    return np.unique(labels, return_inverse=True)[1]


def group_betas(labels, spec, rule):
    """Per group, its beta by `rule` (BETA_RULES) from the keys' specialisation `spec`: mean 1 over keys."""
    count = labels.max() + 1
    if rule == "uniform":
        return np.ones(count)
    score = spec if rule == "specialisation" else 1 - spec
    means = np.array([score[labels == g].mean() for g in range(count)])
    per_key = means[labels].mean()
    return means / per_key if per_key > 0 else np.ones(count)


@torch.no_grad()
def prompt_keys(model, layers, examples, batch_size=32):
    """Per layer of `layers`, the keys [prompt tokens, d_m] at the prompt tokens of `examples` (encoded
    training examples: their positions without a label), in float32 on the CPU."""
    modules, collected, where = memory_modules(model), {i: [] for i in layers}, None

    def keep(layer):
        return lambda module, args: collected[layer].append(args[0][where].float().cpu())

    handles = [modules[i].register_forward_pre_hook(keep(i)) for i in layers]
    collate, device = PadCollator(pad_token_id=0), next(model.parameters()).device  # padding is masked out
    try:
        for start in range(0, len(examples), batch_size):
            batch = {k: v.to(device) for k, v in collate(examples[start : start + batch_size]).items()}
            where = batch["attention_mask"].bool() & (batch["labels"] == IGNORE_INDEX)
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for handle in handles:
            handle.remove()
    return [torch.cat(collected[i]) for i in layers]


def needs_examples(method, examples):
    if not examples:
        raise ValueError(f"{method}: needs the training examples (steer(..., examples=...))")
    return examples


class GroupedIntervention(Steering):
    """semantic and activation: the intervention with each key's adjustment scaled by its group's beta."""

    def __init__(self, model, method, *, state, **params):
        settings(GROUPED, params)
        super().__init__(model, method, **{k: v for k, v in params.items() if k not in GROUPED})
        if len(state["groups"]) != len(self.layers):
            raise ValueError(f"state: groups of {len(state['groups'])} layers, {len(self.layers)} steered")
        self.state, device = state, next(model.parameters()).device
        self.key_scales = {layer: torch.tensor(betas, dtype=torch.float32, device=device)[torch.tensor(labels, device=device)]
                           for layer, labels, betas in zip(self.layers, state["groups"], state["betas"])}

    @classmethod
    def prepare(cls, model, method, params, examples):
        found, layers = settings(GROUPED, params), steered_layers(model, params)
        if method == "semantic":
            features = [memory_vectors(memory_modules(model)[i]).detach().float().cpu().numpy() for i in layers]
        else:
            development = sample(needs_examples(method, examples), found["dev_examples"], found["dev_seed"], "the training examples",
                                 "the activation clustering's development sample")
            features = [keys.T.numpy() for keys in prompt_keys(model, layers, development)]
        size = model.get_output_embeddings().weight.shape[0]
        spec = [specialisation(s["entropy"], size).numpy() for s in layer_statistics(model, layers, found["final_norm"])]
        labels = [cluster(f, found["groups"], found["linkage"]) for f in features]
        return {"groups": [g.tolist() for g in labels],
                "betas": [group_betas(g, s, found["beta"]).tolist() for g, s in zip(labels, spec)]}


def answer_log_distribution(examples, size):
    """log Q: the training answers' token distribution (their label tokens but the closing EOS),
    mixed with TARGET_SMOOTHING of the uniform distribution over `size` tokens."""
    counts = torch.zeros(size)
    for example in examples:
        answer = [t for t in example["labels"][:-1] if t != IGNORE_INDEX]
        counts += torch.bincount(torch.tensor(answer, dtype=torch.long), minlength=size)[:size].float()
    return ((1 - TARGET_SMOOTHING) * counts / counts.sum().clamp(min=1) + TARGET_SMOOTHING / size).log()


def selection_scores(model, layers, found, examples):
    """Per layer of `layers`, lam1 H(P_i) + lam2 KL(P_i || Q) of each memory vector [d_m]."""
    modules, decode = memory_modules(model), model.get_output_embeddings().weight
    norm, size = decoder_norm(model, found["final_norm"]), decode.shape[0]
    fixed = {"answers": lambda: answer_log_distribution(needs_examples("selected", examples), size),
             "uniform": lambda: torch.full((size,), -math.log(size)), "mean": lambda: None}[found["target"]]()
    scores = []
    for i in layers:
        vectors = memory_vectors(modules[i])
        log_target = fixed
        if log_target is None:  # 'mean': the layer's own mean surrogate
            mean = surrogate_statistics(vectors, decode, norm)["probability_sum"] / len(vectors)
            log_target = mean.clamp(min=1e-30).log()
        found_i = surrogate_statistics(vectors, decode, norm, log_target=log_target.to(decode.device))
        scores.append(found["lam1"] * found_i["entropy"] + found["lam2"] * found_i["kl"])
    return scores


class SelectedIntervention(Steering):
    """selected: the intervention, then the selected keys amplified by 1 + gamma."""

    def __init__(self, model, method, *, state, **params):
        found = settings(SELECTED, params)
        super().__init__(model, method, **{k: v for k, v in params.items() if k not in SELECTED})
        if len(state["selected"]) != len(self.layers):
            raise ValueError(f"state: selections of {len(state['selected'])} layers, {len(self.layers)} steered")
        self.state, modules, device = state, memory_modules(model), next(model.parameters()).device
        self.factors = {}
        for layer, chosen in zip(self.layers, state["selected"]):
            factor = torch.ones(memory_vectors(modules[layer]).shape[0], device=device)
            factor[torch.tensor(chosen, dtype=torch.long, device=device)] = 1 + found["gamma"]
            self.factors[layer] = factor

    @classmethod
    def prepare(cls, model, method, params, examples):
        found, layers = settings(SELECTED, params), steered_layers(model, params)
        chosen = []
        for score in selection_scores(model, layers, found, examples):
            count = math.ceil(found["top"] * len(score))
            chosen.append(sorted(score.topk(count).indices.tolist()))
        return {"selected": chosen}

    def _intervene(self, layer, keys):
        steered = super()._intervene(layer, keys)
        steered = keys if steered is None else steered[0]
        amplified, mask = steered * self.factors[layer].to(keys.dtype), self._mask_for(keys)
        return (amplified if mask is None else torch.where(mask.unsqueeze(-1), amplified, steered),)


class SurrogateEntropy(Steering):
    """entmax: the loss gets -lam x sum over steered layers of the mean per-token surrogate entropy."""

    def __init__(self, model, method, **params):
        found = settings(ENTMAX, params)
        self.reading, self.decode = found["reading"], model.get_output_embeddings().weight
        self.norm = decoder_norm(model, found["final_norm"])
        super().__init__(model, method, **{k: v for k, v in params.items() if k not in ENTMAX})
        if self.reading == "active":  # fixed on the starting model, like the other variants' state
            entropies = layer_statistics(model, self.layers, found["final_norm"])
            self.vector_entropy = {layer: s["entropy"].to(self.decode.device) for layer, s in zip(self.layers, entropies)}

    def install(self, modules):
        if self.reading == "active":
            return super().install(modules)
        return [modules[i].register_forward_hook(lambda module, args, output, i=i: self._record_output_entropy(i, output))
                for i in self.layers]

    def _record_entropy(self, layer, keys):
        self.calls[layer] += 1
        weights = keys.float().abs()
        shares = weights / (weights.sum(-1, keepdim=True) + EPS)
        self.entropies.append(masked_mean(shares @ self.vector_entropy[layer], self._mask_for(keys)))

    def _record_output_entropy(self, layer, output):
        self.calls[layer] += 1
        states = output if self.norm is None else self.norm(output)
        # The decoding matrix is read, not trained, by the regulariser: it steers the FFN.
        log_p = torch.log_softmax(states.float() @ self.decode.detach().float().T, dim=-1)
        self.entropies.append(masked_mean(-(log_p.exp() * log_p).sum(-1), self._mask_for(output)))
