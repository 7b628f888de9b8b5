"""Information surrogates of the FFN memory vectors (InfoSteer Sec. 4.3): what each vector writes, read as tokens.

For memory vector v_i of a layer (infoflow.training.layers.memory_vectors), its surrogate is the
token distribution P_i = softmax(phi_i) with phi_i = v_i W_decode, W_decode the output embedding (the
LM head); with `final_norm` the model's final norm is applied to v_i first (the paper does not say
whether it is). Its specialisation is 1 - H(P_i) / log |V|: 0 for a vector that promotes every token
alike, 1 for one that promotes a single token. The [d_m, |V|] products are computed a chunk of
vectors at a time, so memory stays at CHUNK_ELEMENTS floats whatever the width and vocabulary.

The command writes one row per memory vector of every layer of a model (layer, index, entropy,
specialisation, its top-K tokens and their probabilities) to Parquet, and the model's vocabulary
(id, token) to CSV; infoflow.report.surrogate_tables reads both.
"""

import argparse
import math

import polars as pl
import pyarrow as pa
import torch

from infoflow import cli, parquet
from infoflow.io import write_csv
from infoflow.training import models
from infoflow.training.layers import final_norm, memory_modules, memory_vectors

CHUNK_ELEMENTS = 2**24  # floats of one chunk's [vectors, |V|] logits (64 MB in float32)
SCHEMA = pa.schema([
    ("layer", pa.int32()), ("index", pa.int32()), ("entropy", pa.float64()), ("specialisation", pa.float64()),
    ("top_tokens", pa.list_(pa.string())), ("top_probabilities", pa.list_(pa.float64())),
])


def decoder_norm(model, apply):
    """The final norm when the surrogates read vectors through it (`apply`), else None."""
    return final_norm(model) if apply else None


@torch.no_grad()
def surrogate_statistics(vectors, decode, norm=None, top_k=0, log_target=None):
    """Per memory vector (rows of `vectors`, [n, d]) with `decode` the LM head weight ([|V|, d]):
    {'entropy': H(P_i) in nats [n], 'probability_sum': sum_i P_i [|V|], 'top_ids' / 'top_probabilities': the
    top_k tokens of each [n, top_k], and with `log_target` ([|V|] log-probabilities of a distribution Q on
    the device of `decode`) 'kl': KL(P_i || Q) [n]}, all float32 on the CPU."""
    decode = decode.detach().float()
    chunk = max(1, CHUNK_ELEMENTS // decode.shape[0])
    parts = {"entropy": [], "top_ids": [], "top_probabilities": [], "kl": []}
    probability_sum = torch.zeros(decode.shape[0], device=decode.device)
    for start in range(0, len(vectors), chunk):
        rows = vectors[start : start + chunk].detach().float()
        if norm is not None:
            rows = norm(rows.to(norm.weight.dtype)).float()
        log_p = torch.log_softmax(rows @ decode.T, dim=-1)
        p = log_p.exp()
        entropy = -(p * log_p).sum(-1)
        probability_sum += p.sum(0)
        parts["entropy"].append(entropy.cpu())
        if top_k:
            top = log_p.topk(top_k, dim=-1)
            parts["top_ids"].append(top.indices.cpu())
            parts["top_probabilities"].append(top.values.exp().cpu())
        if log_target is not None:
            parts["kl"].append((-entropy - p @ log_target.float()).cpu())
    return {"probability_sum": probability_sum.cpu(), **{name: torch.cat(values) for name, values in parts.items() if values}}


def layer_statistics(model, layers, apply_final_norm, top_k=0, log_target=None):
    """surrogate_statistics of the memory vectors of each of `layers` (indices), in that order."""
    modules, decode = memory_modules(model), model.get_output_embeddings().weight
    norm = decoder_norm(model, apply_final_norm)
    return [surrogate_statistics(memory_vectors(modules[i]), decode, norm, top_k, log_target) for i in layers]


def specialisation(entropy, vocabulary_size):
    """1 - H / log |V|."""
    return 1 - entropy / math.log(vocabulary_size)


def vocabulary(tokenizer):
    """Every token of the model's vocabulary: id and text, in id order."""
    by_id = sorted((i, token) for token, i in tokenizer.get_vocab().items())
    return pl.DataFrame({"id": [i for i, _ in by_id], "token": [t for _, t in by_id]}, schema={"id": pl.Int64, "token": pl.String})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--top-k", type=int, required=True, help="tokens listed per memory vector")
    parser.add_argument("--final-norm", choices=("true", "false"), required=True, help="apply the final norm before W_decode")
    parser.add_argument("--threads", type=int, required=True)
    models.add_arguments(parser)
    parser.add_argument("--out", required=True, help="Parquet file: one row per memory vector")
    parser.add_argument("--vocabulary", required=True, help="CSV file: the model's tokens (id, token)")
    args = parser.parse_args()
    cli.setup(args.threads)
    model, tokenizer = models.load(args.model, **models.options(args))
    tokens = vocabulary(tokenizer)
    text = dict(zip(tokens["id"], tokens["token"]))
    size = model.get_output_embeddings().weight.shape[0]
    layers = range(len(memory_modules(model)))
    with parquet.writer(args.out, SCHEMA) as write:
        for layer, found in zip(layers, layer_statistics(model, layers, args.final_norm == "true", args.top_k)):
            entropy = found["entropy"].double()
            write({"layer": layer, "index": list(range(len(entropy))), "entropy": entropy.numpy(),
                   "specialisation": specialisation(entropy, size).numpy(),
                   "top_tokens": [[text.get(i, "") for i in row] for row in found["top_ids"].tolist()],
                   "top_probabilities": found["top_probabilities"].double().tolist()})
    write_csv(args.vocabulary, tokens)


if __name__ == "__main__":
    cli.run(main)
