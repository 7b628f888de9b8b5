"""The kinds of token in a modular-task prompt (infoflow.world.modular_task writes its signal tokens
`S{k}` and noise tokens `N{k}`), and the kinds of key position the attention stage sums attention
over (infoflow.inforidge.attention): signal, noise, the prediction position itself, and any other."""

import re

WORD_KINDS = {"signal": re.compile(r"S\d+"), "noise": re.compile(r"N\d+")}
MASS_KINDS = ("signal", "noise", "last", "rest")


def word_kind(word):
    """'signal' (S<k>), 'noise' (N<k>) or 'rest' (any other word of a prompt)."""
    return next((kind for kind, pattern in WORD_KINDS.items() if pattern.fullmatch(word)), "rest")
