"""The token classes of the information-flux analysis; the first match wins:

  punctuation  only punctuation characters;
  function     a word of FUNCTION_WORDS (closed-class English words, case-insensitive);
  number       digits, optionally with ',' or '.' inside (years, counts);
  copied       the token id occurs in the prompt;
  content      everything else.
"""

import string

CLASSES = ("punctuation", "function", "number", "copied", "content")
FUNCTION_WORDS = frozenset(
    """a an the this that these those and or but nor so yet if then than as of in on at to for from by with
    about into onto over under after before between through during without within is are was were be been
    being am has have had do does did will would shall should can could may might must he she it they we
    you i me him her us them his hers its their our your my who whom whose which what when where why how
    not no there here also""".split()
)


def token_class(text, copied):
    """The class of one response token (see the module docstring for the order)."""
    word = text.strip()
    if word and all(c in string.punctuation for c in word):
        return "punctuation"
    if word.lower() in FUNCTION_WORDS:
        return "function"
    if word and word[0].isdigit() and word.replace(",", "").replace(".", "").isdigit():
        return "number"
    return "copied" if copied else "content"
