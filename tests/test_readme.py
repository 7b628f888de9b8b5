"""README.md and docs/*.md against the repository: numbers quoted from config.yaml, and links.

A number the pages take from `config.yaml` carries a hidden marker right before it,
`<!-- config: EXPR -->NUMBER`, where EXPR is a dotted key path (`inforidge.mi.examples`,
`sft.epochs.knowledge`, `inforidge.kernel_checks[2].sigma`) or a small expression over the config's
top-level keys (`len(seeds.knowledge)`, `max(modular_task.ood_moduli)`). The tests evaluate EXPR on
config.yaml and fail when the number differs, so a changed config value cannot leave a stale figure
behind. Sentences that quote a config value in a fixed phrasing ("N = 100", "200 ID + 200 OOD
examples", "5 sampling seeds", ...) are also checked when unmarked.
"""

import math
import re

import pytest
import yaml

from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

MARKER = re.compile(r"<!--\s*config:\s*(.+?)\s*-->")
NUMBER = re.compile(r"\s*([-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?)")

# Values every set of pages must quote with a marker, so that removing the markers fails too.
REQUIRED = {
    "len(seeds.knowledge)",
    "len(seeds.modular)",
    "base_model.layers",
    "base_model.own_models.modular.layers",
    "inforidge.checkpoints",
    "inforidge.extraction.examples",
    "inforidge.mi.examples",
    "inforidge.mi.sample_seeds",
    "inforidge.residual_scaling.seeds",
    "key_shift.examples",
    "flux.examples",
    "sft.epochs.knowledge",
    "sft.epochs.modular",
    "statistics.bootstrap_samples",
    'len([m for m in methods.values() if m.kind != "sft"])',
}

# Fixed phrasings that quote a config value, checked wherever they occur (marked or not).
PHRASES = [
    (r"\bN = (\d+)", "inforidge.mi.examples"),
    (r"\b(\d+) ID (?:\+|and) \d+ OOD (?:test )?examples", "inforidge.extraction.examples"),
    (r"\b\d+ ID (?:\+|and) (\d+) OOD (?:test )?examples", "inforidge.extraction.examples"),
    (r"\b(\d+) sampling seeds", "inforidge.mi.sample_seeds"),
    (r"\b(\d+) fit seeds", "inforidge.residual_scaling.seeds"),
    (r"\b(\d+) biography openings", "flux.examples"),
    (r"\b(\d+) ID test prompts", "key_shift.examples"),
    (r"\b(\d+) made-up people", "knowledge_world.entities"),
    (r"\b(\d+) paraphrased biographies", "knowledge_world.biographies_per_entity"),
    (r"\b(\d+) evenly spaced", "inforidge.checkpoints"),
]


class Node(dict):
    """A config mapping whose keys read as attributes, so EXPR can say `inforidge.mi.examples`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r} here (keys: {', '.join(self)})") from None


def wrap(value):
    if isinstance(value, dict):
        return Node({key: wrap(item) for key, item in value.items()})
    if isinstance(value, list):
        return [wrap(item) for item in value]
    return value


CONFIG = wrap(yaml.safe_load((REPO / "config.yaml").read_text()))
FUNCTIONS = {"len": len, "min": min, "max": max, "sum": sum}


def evaluate(expression, config=CONFIG):
    return eval(expression, {"__builtins__": {}, **FUNCTIONS}, dict(config))  # noqa: S307 (our own pages)


def prose(text):
    """`text` without fenced code blocks and inline code spans (whose contents are not claims)."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def markers(text):
    """(expression, quoted number or None, line) for every marker in `text`."""
    text = prose(text)
    found = []
    for match in MARKER.finditer(text):
        number = NUMBER.match(text, match.end())
        line = text.count("\n", 0, match.start()) + 1
        found.append((match.group(1), number.group(1) if number else None, line))
    return found


def phrases(text):
    """(expression, quoted number, phrase) for every fixed phrasing in `text`, markers removed."""
    flat = re.sub(r"\s+", " ", MARKER.sub("", prose(text)))
    return [
        (expression, match.group(1), match.group(0))
        for pattern, expression in PHRASES
        for match in re.finditer(pattern, flat)
    ]


def same(quoted, value):
    number = float(quoted.replace(",", ""))
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isclose(number, value)


def stale(text, config=CONFIG):
    """Every quoted config number in `text` that is not the config's value, as readable lines."""
    problems = []
    for expression, quoted, line in markers(text):
        if quoted is None:
            problems.append(f"line {line}: marker `{expression}` is not followed by a number")
            continue
        try:
            value = evaluate(expression, config)
        except Exception as error:  # a key that is gone from the config is stale too
            problems.append(f"line {line}: `{expression}`: {error}")
            continue
        if not same(quoted, value):
            problems.append(f"line {line}: says {quoted}, config.yaml `{expression}` is {value!r}")
    for expression, quoted, phrase in phrases(text):
        value = evaluate(expression, config)
        if not same(quoted, value):
            problems.append(f"{phrase!r} says {quoted}, config.yaml `{expression}` is {value!r}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_config_numbers_match_config_yaml(page):
    problems = stale(page.read_text())
    assert not problems, f"{page.relative_to(REPO)} quotes stale config values:\n" + "\n".join(problems)


def test_pages_mark_the_config_values_they_quote():
    quoted = {expression for page in PAGES for expression, _, _ in markers(page.read_text())}
    assert REQUIRED <= quoted, f"no marked quote of: {sorted(REQUIRED - quoted)}"


def test_yaml_examples_of_methods_are_config_entries():
    """A ```yaml block showing `methods:` entries shows them as config.yaml has them."""
    for page in PAGES:
        for block in re.findall(r"^```yaml\n(.*?)^```", page.read_text(), flags=re.M | re.S):
            shown = yaml.safe_load(block) or {}
            for name, entry in (shown.get("methods") or {}).items():
                assert CONFIG["methods"].get(name) == entry, f"{page.name}: method {name} differs from config.yaml"


def test_a_stale_number_is_caught():
    """The checks fail on a number that no longer matches, marked or in a fixed phrasing."""
    examples = CONFIG["inforidge"]["mi"]["examples"]
    good = f"on N = <!-- config: inforidge.mi.examples -->{examples} examples"
    assert stale(good) == []
    assert stale(f"<!-- config: inforidge.mi.examples -->{examples + 1} examples")
    assert stale(f"on N = {examples * 2} examples")
    assert stale("a sample of 400 ID and 400 OOD test examples")
    assert stale("<!-- config: inforidge.no_such_key -->3")
    assert stale("<!-- config: len(seeds.knowledge) --> ten seeds")
    changed = wrap({**CONFIG, "seeds": {"knowledge": [0, 1], "modular": [0]}})
    assert stale(f"<!-- config: len(seeds.knowledge) -->{len(CONFIG['seeds']['knowledge'])} seeds", changed)
    assert stale("`<!-- config: len(seeds.knowledge) -->` in code is no claim") == []


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    heading = re.sub(r"[`*_]|<[^>]*>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(page):
    seen, found = {}, set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose_keep_inline(page.read_text()), flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def prose_keep_inline(text):
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(page):
    return LINK.findall(prose_keep_inline(page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)} has broken links:\n" + "\n".join(broken)


def test_readme_links_every_docs_page():
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(REPO / "README.md")}
    missing = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not missing, f"README.md links no {missing}"
