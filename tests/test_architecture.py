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
from tuner.vocabulary import RECORD_COLUMNS, Column

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


def test_a_run_imports_mlflow_only_for_a_spec_that_logs_to_it():
    """Importing MLflow is about a second of every `tuner run`'s start-up where it is installed (as it is here)."""
    assert "mlflow" not in _loaded_after("import tuner.tuning.search, tuner.tuning.restore, tuner.tuning.run")
    assert "mlflow" in _loaded_after("import tuner.tuning.mlflow_logging")


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


# ---- column names: the vocabulary's, never a literal --------------------------------------------------------------

FRAME_METHODS = {"groupby", "sort_values", "drop_duplicates", "set_index", "merge", "isin", "dropna", "get", "drop"}
NAMED_COLUMNS = set(RECORD_COLUMNS) | {Column.EPOCHS_RUN, Column.BEST_EPOCH, Column.TOTAL_SECONDS, Column.USER,
                                       Column.BASELINE}
READ_RECORDS = ("tuner.experiment", "tuner.tuning", "tuner.analysis", "tuner.console")  # the layers reading records
ALLOWED_LITERALS = {
    ("tuner.tuning.trainable", "best_epoch"),  # a checkpoint's own key, (epoch, value): not the trial table's column
    ("tuner.experiment.provenance", "model"),  # provenance.json's key for where a user's model came from
}


def _column_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants naming a record or trial-table column where code indexes a frame, a row or a report with
    them: `x["epoch"]`, `x[["trial_id", ...]]`, `{"epoch": ...}`, `frame.groupby("trial_id")`, `on="trial_id"`."""
    found: list[tuple[int, str]] = []

    def strings(node: ast.AST | None) -> list[ast.Constant]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [item for element in node.elts for item in strings(element)]
        return []

    for node in ast.walk(tree):
        candidates: list[ast.Constant] = []
        if isinstance(node, ast.Subscript):
            candidates = strings(node.slice)
        elif isinstance(node, ast.Dict):
            candidates = [key for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FRAME_METHODS:
            candidates = [c for argument in [*node.args, *(k.value for k in node.keywords)] for c in strings(argument)]
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            candidates = strings(node.left)
        found.extend((c.lineno, c.value) for c in candidates if c.value in NAMED_COLUMNS)
    return found


def test_code_reading_records_names_their_columns_through_the_vocabulary():
    """A renamed column is one edit in vocabulary.Column; a literal "trial_id" would silently read nothing."""
    literals = [
        f"{module}:{line} {value!r}"
        for path in sorted(PACKAGE.rglob("*.py")) if any(_starts(module := _module_name(path), p) for p in READ_RECORDS)
        for line, value in _column_literals(ast.parse(path.read_text())) if (module, value) not in ALLOWED_LITERALS
    ]
    assert literals == []


def test_the_column_checker_finds_literals_wherever_a_frame_is_indexed():
    code = ('a["epoch"]\na[["trial_id", b]]\n{"stop_reason": 1}\nf.groupby("attempt")\nf.merge(g, on="user")\n'
            '"loss" in row\na["anything else"]\n')
    assert [value for _, value in _column_literals(ast.parse(code))] == [
        "epoch", "trial_id", "stop_reason", "attempt", "user", "loss"]


def test_the_vocabulary_names_the_records_fixed_columns_in_the_schemas_order():
    from tuner.experiment.records import record_schema

    assert tuple(record_schema([K]).names[:len(RECORD_COLUMNS)]) == RECORD_COLUMNS
