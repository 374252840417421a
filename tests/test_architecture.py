"""The layers import one way: recsys <- experiment <- tuning / analysis, and only tuning imports Ray.

Statically, every import statement of every module counts: the ones inside functions, and the type-only ones in
`if TYPE_CHECKING:` blocks too (a type a module names is a dependency a reader follows, even if it never runs).
Then in a fresh interpreter: what `tuner validate` and `tuner report` load.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_experiment import K, write_trial
from tuner.recsys.hyperparameters import Hyperparameters

PACKAGE = Path(__file__).resolve().parents[1] / "tuner"
BASE = ("tuner.vocabulary", "tuner.errors", "tuner.storage", "tuner.yaml_loader", "tuner.timeline", "tuner.spec",
        "tuner.search_space")

# module prefix -> what its imports may not start with
COMMANDS = ("tuner.cli", "tuner.train_command", "tuner.console")  # the top: what the commands run and print
FORBIDDEN = {
    "tuner.recsys": ("tuner.experiment", "tuner.tuning", "tuner.analysis", *COMMANDS, "ray"),
    "tuner.experiment": ("tuner.tuning", "tuner.analysis", *COMMANDS, "ray", "torch"),
    "tuner.tuning": ("tuner.analysis", *COMMANDS),
    "tuner.analysis": ("tuner.tuning", *COMMANDS, "ray", "torch"),
    "tuner.spec_loader": ("tuner.experiment", "tuner.tuning", "tuner.analysis", "tuner.cli", "ray", "pandas"),
    **{base: ("tuner.recsys.models", "tuner.recsys.training", "tuner.recsys.metrics", "tuner.experiment",
              "tuner.tuning", "tuner.analysis", *COMMANDS, "ray", "torch", "pandas") for base in BASE},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> list[str]:
    """Every module an import statement names, wherever it stands (type-only imports included)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)  # from tuner.tuning import search
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _all_imports() -> dict[str, list[str]]:
    return {_module_name(path): _imports(ast.parse(path.read_text())) for path in sorted(PACKAGE.rglob("*.py"))}


def _starts(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_each_layer_imports_only_the_layers_below_it():
    violations = [
        f"{module} imports {name}"
        for module, names in _all_imports().items()
        for prefix, forbidden in FORBIDDEN.items() if _starts(module, prefix)
        for name in names if any(_starts(name, f) for f in forbidden)
    ]
    assert violations == []


def test_only_the_tuning_package_imports_ray():
    importers = {module for module, names in _all_imports().items() if any(_starts(n, "ray") for n in names)}
    assert importers and all(_starts(module, "tuner.tuning") for module in importers), importers


def test_the_checker_sees_imports_inside_functions_and_type_checking_blocks():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ray\n"
                     "def f():\n    from tuner.tuning import search\n")
    assert _imports(tree) == ["typing", "typing.TYPE_CHECKING", "ray", "tuner.tuning", "tuner.tuning.search"]


def _loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    return set(result.stdout.split())


def test_validate_loads_neither_ray_nor_pandas():
    """It loads torch: the spec's model is imported and run once on a tiny graph."""
    spec = PACKAGE.parent / "search_spaces" / "lightgcn.yaml"
    loaded = _loaded_after(f"from tuner.cli import app\napp(['validate', {str(spec)!r}], standalone_mode=False)")
    assert {"tuner", "torch"} <= loaded and not loaded & {"ray", "pandas"}


@pytest.mark.slow
def test_a_tuning_report_loads_neither_ray_nor_torch(tmp_path):
    from tuner.experiment.layout import save_spec
    from tuner.spec import validate_spec

    directory = tmp_path / "tuning"
    spec = validate_spec({"name": "tuning", "model": "mf", "metric": f"val/recall@{K}", "storage": str(tmp_path),
                          "fixed": {"k": [K]}, "params": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1}}}, "t")
    save_spec(str(directory), spec)
    for i, lr in enumerate((0.01, 0.02, 0.05)):
        write_trial(str(directory), f"t{i}", Hyperparameters(k=[K], lr=lr), [{f"val/recall@{K}": lr}])
    loaded = _loaded_after(f"from tuner.cli import app\napp(['report', {str(directory)!r}], standalone_mode=False)")
    assert {"tuner", "optuna", "matplotlib"} <= loaded and not loaded & {"torch", "ray"}
    assert (directory / "report" / "report.md").is_file()


def test_the_public_api_is_importable_from_the_package_and_imports_nothing_heavy_until_used():
    loaded = _loaded_after("import tuner")
    assert not loaded & {"torch", "ray", "pandas"}
    import tuner

    assert {name: getattr(tuner, name).__name__ for name in tuner.__all__} == {
        "Experiment": "Experiment", "ExperimentSpec": "ExperimentSpec", "load_spec": "load_spec",
        "Recommender": "Recommender",
        "run_experiment": "run_experiment", "train": "train", "write_report": "write_report"}


@pytest.mark.parametrize("script", sorted((PACKAGE.parent / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_every_benchmark_script_still_imports_what_it_uses(script):
    """Benchmarks run by hand, so nothing else notices when a refactor removes a name one of them imports."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module_spec.loader.exec_module(importlib.util.module_from_spec(module_spec))
