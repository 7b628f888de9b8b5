"""The package's layering, read from the imports (AST): world <- training <- infosteer / inforidge
<- posttrain, and report reading files only; statistics and tables never reach figure code."""

import ast
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src"
# What each layer may import from infoflow: root helpers, then the layers below it.
ROOT_HELPERS = {"io", "cli", "parquet", "sampling", "resources", "devices", "forkserver", "disk", "base_models"}
ALLOWED = {
    "root": set(),
    "world": {"world"},
    "training": {"world", "training"},
    "infosteer": {"world", "training", "infosteer"},
    "inforidge": {"world", "training", "inforidge"},
    "posttrain": {"world", "training", "infosteer", "posttrain"},
    "report": {"world", "report"},
    # config.py checks a whole config for the Snakefile, so it may read any layer's constants.
    "config": {"world", "training", "infosteer", "inforidge", "posttrain", "report"},
}
MAX_LINES = 300


def module_name(path):
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


MODULES = {module_name(p): p for p in sorted((SRC / "infoflow").rglob("*.py"))}


def layer(module):
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    return "config" if parts[1] == "config" else "root" if parts[1] in ROOT_HELPERS else parts[1]


def imports(module, at_load=False):
    """The modules `module` imports: infoflow modules by full name, others by their top package;
    `at_load`: only those imported when it is loaded, not inside a function (a lazy import)."""
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in tree.body if at_load else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name if a.name.startswith("infoflow.") else a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if not node.module.startswith("infoflow"):
                found.add(node.module.split(".")[0])
                continue
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return found


def reached(module, at_load=False):
    """Everything `module` imports, transitively through infoflow's own modules."""
    seen, todo = set(), [module]
    while todo:
        for name in imports(todo.pop(), at_load) - seen:
            seen.add(name)
            if name in MODULES:
                todo.append(name)
    return seen


def is_figure_code(name):
    return name == "matplotlib" or (name in MODULES and name.rsplit(".", 1)[-1].endswith("figures"))


def test_the_tree_has_a_package_per_paper_and_stage():
    assert {m.split(".")[1] for m in MODULES if m.count(".") >= 2} == {
        "world", "training", "infosteer", "inforidge", "posttrain", "report"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_and_lower_layers(module):
    allowed = ALLOWED[layer(module)]
    bad = sorted(name for name in imports(module)
                 if name.startswith("infoflow.") and layer(name) != "root" and layer(name) not in allowed)
    assert bad == [], f"{module} ({layer(module)}) imports a higher or sibling layer"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) == "report"))
def test_report_modules_load_no_model_code(module):
    # (cli.setup imports torch only for the jobs that pass it a thread count)
    assert not reached(module, at_load=True) & {"torch", "transformers", "peft", "accelerate"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not is_figure_code(m)))
def test_statistics_and_tables_never_reach_figure_code(module):
    assert not {name for name in reached(module) if is_figure_code(name)}, module


@pytest.mark.parametrize("path", sorted(MODULES.values()), ids=lambda p: module_name(p))
def test_a_module_stays_under_the_size_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_checks_catch_a_violation(tmp_path, monkeypatch):
    # A report table module importing the trainer and the figures is refused by all three checks.
    bad = tmp_path / "bad.py"
    bad.write_text("from infoflow.training import trainer\nfrom infoflow.report.figures import save\n")
    monkeypatch.setitem(MODULES, "infoflow.report.bad_tables", bad)
    with pytest.raises(AssertionError):
        test_a_module_imports_only_its_own_and_lower_layers("infoflow.report.bad_tables")
    with pytest.raises(AssertionError):
        test_report_modules_load_no_model_code("infoflow.report.bad_tables")
    with pytest.raises(AssertionError):
        test_statistics_and_tables_never_reach_figure_code("infoflow.report.bad_tables")
