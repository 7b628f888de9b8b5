import re

import yaml

from conftest import REPO


def pins(lines):
    return dict(line.split("==") for line in lines if "==" in line)


def test_conda_envs_pin_the_same_versions_as_requirements():
    requirements = pins(l.strip() for l in (REPO / "requirements.txt").read_text().splitlines() if not l.startswith("#"))
    for path in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(path.read_text())
        pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        env_pins = pins(pip_section)
        assert env_pins, path
        for package, version in env_pins.items():
            assert requirements.get(package) == version, f"{path.name}: {package}=={version} vs requirements.txt"
        assert all("==" in p for p in pip_section), f"{path.name}: unpinned pip package"


def test_every_rule_names_an_existing_env():
    rule_files = sorted((REPO / "workflow/rules").glob("*.smk"))
    envs = [(path, env) for path in rule_files for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', path.read_text())]
    n_rules = sum(len(re.findall(r"^rule \w+:", p.read_text(), re.M)) for p in rule_files)
    assert len(envs) == n_rules
    for path, env in envs:
        assert (path.parent / env).resolve().is_file(), f"{path.name}: {env}"
