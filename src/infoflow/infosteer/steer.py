"""InfoSteer (arXiv 2507.05158): steer the FFN key coefficients of a causal LM during post-training.

Two methods, installed as forward pre-hooks on each steered layer's memory matrix (see keys.py):
  intervention:   per token, the ceil(p * d_m) smallest key coefficients are replaced by alpha times
                  that token's mean key coefficient;
  regularization: the loss gets -lam * sum over steered layers of the mean per-token entropy of the
                  normalised keys; `entropy()` returns that differentiable sum for the last forward.

Use it on any supported Hugging Face causal LM:

    with steer(model, "regularization", lam=0.01) as steering:
        loss = model(**batch).loss - 0.01 * steering.entropy()

The fine-grained variants (semantic, activation, selected, entmax) are classes of
infoflow.infosteer.variants built on Steering; `steering_class` is the one map from a method (a
config `kind:`) to its class. A variant fixes per-key factors from the model it starts on (its
`state`), which its folder records with the method.

The hooks are removed when the block ends, so a saved model is a plain Hugging Face model; its
folder records the method (infoflow.training.models.METHOD_FILE), and `from_folder` puts back the
steering of an intervention (or a variant of it) trained with at_eval for decoding.
"""

import math
from contextlib import contextmanager, nullcontext

import torch

from infoflow import cli
from infoflow.training import models
from infoflow.training.layers import memory_modules, resolve_layers

METHODS = ("intervention", "regularization", "semantic", "activation", "selected", "entmax")
LOSS_METHODS = ("regularization", "entmax")  # those that add a term to the loss instead of changing the keys
DECODING_METHODS = ("intervention", "semantic", "activation", "selected")  # those at_eval can keep on while decoding
SELECTIONS = ("signed", "magnitude")
NORMALIZATIONS = ("abs", "softmax")
POSITIONS = ("all", "response")
EPS = 1e-8


def intervene(keys, n, alpha, selection, detach_fill, mask=None, scale=None):
    """Keys with the n smallest coefficients of each token set to alpha * that token's mean key.

    `selection` 'signed' takes the n most negative coefficients; 'magnitude' the n nearest zero.
    The mean is over the unmodified keys, computed in float32. Tokens where `mask` ([...], bool)
    is False keep their keys. With `scale` ([d_m], a variant's beta per key) key i moves by
    scale_i times its adjustment: k_i + scale_i (fill - k_i). One out-of-place scatter of n values
    per token: no full-size copies beyond the output.
    """
    score = keys.detach() if selection == "signed" else keys.detach().abs()
    index = score.topk(n, dim=-1, largest=False, sorted=False).indices
    fill = (alpha * keys.float().mean(-1, keepdim=True)).to(keys.dtype).expand(*keys.shape[:-1], n)
    if detach_fill:
        fill = fill.detach()
    old = keys.gather(-1, index) if mask is not None or scale is not None else None
    if scale is not None:
        fill = old + scale.to(keys.dtype)[index] * (fill - old)
    if mask is not None:  # unsteered tokens write their own values back: [..., n] work, not [..., d_m]
        fill = torch.where(mask.unsqueeze(-1), fill, old)
    return keys.scatter(-1, index, fill)


class AbsKeyEntropy(torch.autograd.Function):
    """H(|k| / S) = log S - sum_i a_i log a_i / S, with a = |k| and S = sum_i a_i, and its gradient
    dH/dk_i = sign(k_i) (U / S - log a_i) / S with U = sum_i a_i log a_i.

    Written out by hand because autograd's version of the plain formula costs about twice the
    full-size [tokens, d_m] operations (InfoSteer's regulariser runs on every layer, every step).
    """

    @staticmethod
    def forward(ctx, keys):
        a = keys.abs()
        log_a = torch.log(a + EPS)
        total = a.sum(-1) + EPS
        weighted = torch.linalg.vecdot(a, log_a)
        ctx.save_for_backward(keys, log_a, total, weighted)
        return torch.log(total) - weighted / total

    @staticmethod
    def backward(ctx, grad):
        keys, log_a, total, weighted = ctx.saved_tensors
        scale = (grad / total).unsqueeze(-1)
        return (weighted / total).unsqueeze(-1).sub(log_a).mul_(scale).mul_(keys.sign())


def key_entropy(keys, normalization):
    """Entropy (nats) of each token's key distribution: 'abs' is |k| / sum |k|; 'softmax' is softmax(k)."""
    keys = keys.float()
    if normalization == "softmax":
        log_q = torch.log_softmax(keys, dim=-1)
        return -(log_q.exp() * log_q).sum(-1)
    return AbsKeyEntropy.apply(keys)


def masked_mean(values, mask):
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


class Steering:
    """The hooks of one steering method on one model; `remove()` takes them off."""

    state = None  # a variant's per-key factors, fixed when it starts (JSON); the generic methods have none
    key_scales = {}  # per steered layer, a variant's factor [d_m] of each key's adjustment (intervene's scale)

    def __init__(self, model, method, layers="all", positions="all", p=0.01, alpha=1.0, selection="signed",
                 detach_fill=False, lam=0.01, normalization="abs"):
        modules = memory_modules(model)
        self.layers = resolve_layers(layers, len(modules))
        check(method, p=p, alpha=alpha, selection=selection, normalization=normalization, positions=positions)
        self.method, self.positions, self.adds_loss = method, positions, method in LOSS_METHODS
        self.p, self.alpha, self.selection, self.detach_fill = p, alpha, selection, detach_fill
        self.lam, self.normalization = lam, normalization
        self.mask = None  # [batch, seq] bool: the positions steered; None means all
        self.entropies = []  # per steered layer, from the last forward pass
        self.calls = [0] * len(modules)
        self.handles = self.install(modules)

    @classmethod
    def prepare(cls, model, method, params, examples):
        """The state a method fixes on `model` before training (None: the generic methods need none)."""
        return None

    def install(self, modules):
        """Forward pre-hooks on the steered layers' memory modules, which see the keys."""
        hook = self._record_entropy if self.adds_loss else self._intervene
        return [modules[i].register_forward_pre_hook(lambda module, args, i=i: hook(i, args[0])) for i in self.layers]

    def set_positions(self, attention_mask=None, labels=None):
        """Steer only real tokens, and with positions='response' only those that predict a label.

        Also starts a new forward pass: the entropies of the previous one are dropped.
        """
        self.entropies = []
        mask = None if attention_mask is None else attention_mask.bool()
        if self.positions == "response" and labels is not None:
            predicts_label = torch.zeros_like(labels, dtype=torch.bool)
            predicts_label[:, :-1] = labels[:, 1:] != -100
            mask = predicts_label if mask is None else mask & predicts_label
        self.mask = None if mask is not None and bool(mask.all()) else mask  # all-True: skip the masking work

    def _mask_for(self, keys):
        """The position mask if it fits this forward pass (cached decoding steps see one token: all)."""
        return self.mask if self.mask is not None and self.mask.shape == keys.shape[:-1] else None

    def _intervene(self, layer, keys):
        self.calls[layer] += 1
        n = math.ceil(self.p * keys.shape[-1])
        if n == 0:
            return None  # the input passes unchanged
        scale = self.key_scales.get(layer)
        return (intervene(keys, n, self.alpha, self.selection, self.detach_fill, self._mask_for(keys), scale),)

    def _record_entropy(self, layer, keys):
        self.calls[layer] += 1
        self.entropies.append(masked_mean(key_entropy(keys, self.normalization), self._mask_for(keys)))

    def entropy(self):
        """Sum over steered layers of the mean per-token key entropy of the last forward pass."""
        if not self.entropies:
            raise RuntimeError("entropy() needs a forward pass of the steered model first")
        return torch.stack(self.entropies).sum()

    def remove(self):
        for handle in self.handles:
            handle.remove()
        self.handles = []


def check(method, *, p, alpha, selection, normalization, positions):
    """Raise ValueError naming the parameter for values the methods are not defined for.

    p = 0 is allowed here (it steers nothing, the control that must equal plain SFT); configs
    require 0 < p < 1.
    """
    if method not in METHODS:
        raise ValueError(f"method: unknown '{method}' (expected {' or '.join(METHODS)})")
    if not 0 <= p < 1:
        raise ValueError(f"p: {p} must lie in [0, 1)")
    if alpha <= 0:
        raise ValueError(f"alpha: {alpha} must be > 0")
    if selection not in SELECTIONS:
        raise ValueError(f"selection: unknown '{selection}' (expected {' or '.join(SELECTIONS)})")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization: unknown '{normalization}' (expected {' or '.join(NORMALIZATIONS)})")
    if positions not in POSITIONS:
        raise ValueError(f"positions: unknown '{positions}' (expected {' or '.join(POSITIONS)})")


def parse_layers(text):
    """'all', 'early+middle' or '0,3,5' (the command-line form of `layers`)."""
    return [int(i) for i in text.split(",")] if text[0].isdigit() else text


def parse_boolean(text):
    return {"true": True, "false": False}[text.lower()]


SPEC_TYPES = {
    "p": float,
    "alpha": float,
    "lam": float,
    "selection": str,
    "normalization": str,
    "positions": str,
    "detach_fill": parse_boolean,
    "layers": parse_layers,
    # the variants' (infoflow.infosteer.variants)
    "groups": int,
    "beta": str,
    "linkage": str,
    "final_norm": parse_boolean,
    "dev_examples": int,
    "dev_seed": int,
    "top": float,
    "gamma": float,
    "lam1": float,
    "lam2": float,
    "target": str,
    "reading": str,
}


def parse_spec(tokens):
    """Steering parameters from command-line tokens 'key=value', e.g. ['p=0.01', 'layers=0,1']."""
    return cli.parse_params(tokens, SPEC_TYPES, "steering")


def steering_class(method):
    """The class that steers by `method` (a config `kind:`): the registry of the steering methods."""
    from infoflow.infosteer import variants  # built on this module's Steering, so imported on use

    classes = {"intervention": Steering, "regularization": Steering, "semantic": variants.GroupedIntervention,
               "activation": variants.GroupedIntervention, "selected": variants.SelectedIntervention,
               "entmax": variants.SurrogateEntropy}
    if method not in classes:
        raise ValueError(f"method: unknown '{method}' (expected one of {', '.join(METHODS)})")
    return classes[method]


@contextmanager
def steer(model, method, examples=None, state=None, **params):
    """Install `method` (one of METHODS) on `model`; remove it on exit. A variant fixes its `state`
    on `model` (from `examples`, encoded training examples, where it needs them) unless given one,
    e.g. a saved model's record."""
    cls = steering_class(method)
    state = state if state is not None else cls.prepare(model, method, params, examples)
    steering = cls(model, method, **params) if state is None else cls(model, method, state=state, **params)
    try:
        yield steering
    finally:
        steering.remove()


def from_folder(model, folder):
    """The steering kept on while decoding by the model saved in `folder`: `steer(model, method,
    **params)` for a method saved with at_eval, a null context (yielding None) otherwise, and for
    hub ids and folders without a method record (base models)."""
    record = models.read_method(folder)
    if record is None or not record.get("at_eval"):
        return nullcontext()
    return steer(model, record["method"], state=record.get("state"), **record["params"])
