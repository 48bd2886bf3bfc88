"""dvc.yaml lists exactly the code each stage runs: a module a stage imports (directly or through
other modules of ours) but does not list would let a code change leave a stale result behind."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# Argument parsing, error reporting and atomic writes: they cannot change a result.
EXEMPT = {"vae/__init__.py", "vae/cli.py", "vae/io.py", "stages/__init__.py"}


def module_file(name: str) -> Path | None:
    path = REPO / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


@functools.lru_cache(maxsize=None)
def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] in ("vae", "stages")}


def closure(module: str) -> set[str]:
    """Repository files (relative paths) that `module` runs, itself included."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += list(imports_of(path))
        parts = name.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__ too
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    return {str(p.relative_to(REPO)) for p in seen}


class StrictLoader(yaml.SafeLoader):
    """YAML that refuses a repeated key, as DVC does (PyYAML would keep the last one)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = {k for k in keys if keys.count(k) > 1}
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"repeated keys {sorted(repeated)}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


PIPELINES = ("dvc.yaml", "studies/dvc.yaml")  # the main pipeline and the studies'


def stages() -> dict[str, dict]:
    out = {}
    for pipeline in PIPELINES:
        raw = yaml.load((REPO / pipeline).read_text(encoding="utf-8"), Loader=StrictLoader)["stages"]
        out |= {f"{pipeline}:{name}": entry.get("do", entry) for name, entry in raw.items()}
    return out


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_cover_the_code_it_runs(name):
    stage = stages()[name]
    module = stage["cmd"].split("-m ", 1)[1].split()[0]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]

    def listed(path: str) -> bool:
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)

    missing = sorted(p for p in closure(module) - EXEMPT if not listed(p))
    assert not missing, f"dvc.yaml stage '{name}' runs {missing} but does not list them as deps"
    code = [d for d in deps if d.startswith(("vae/", "stages/")) and d.endswith(".py")]
    unused = sorted(d for d in code if d not in closure(module))
    assert not unused, f"dvc.yaml stage '{name}' lists {unused}, which it does not run"
