import os
import re

import pytest

from tuner.errors import SpecError
from tuner.spec_loader import load_spec

MINIMAL = "name: exp\nmodel: lightgcn\n"


def _load(tmp_path, text, overrides=()):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_spec(path, overrides)


def _error(tmp_path, text, overrides=()):
    with pytest.raises(SpecError) as info:
        _load(tmp_path, text, overrides)
    return str(info.value)


def test_defaults(tmp_path):
    spec = _load(tmp_path, MINIMAL)
    assert spec.dataset.name == "movielens-100k" and spec.metric == "val/recall@20" and spec.fixed.k == (10, 20)


def test_scientific_notation_is_a_number_and_yes_is_not_a_boolean(tmp_path):
    spec = _load(tmp_path, MINIMAL + "fixed: {weight_decay: 1e-4, lr: 5E-3}\n")
    assert spec.fixed.weight_decay == 1e-4 and spec.fixed.lr == 5e-3
    message = _error(tmp_path, MINIMAL + "fixed: {regularization: no}\n")
    assert "fixed.regularization: Input should be 'embedding_l2' or 'optimizer'" in message


def test_integers_stay_integers(tmp_path):
    spec = _load(tmp_path, MINIMAL + "metric: val/ndcg@5\nfixed: {epochs: 10, k: [5, 10]}\n")
    assert spec.fixed.epochs == 10 and spec.fixed.k == (5, 10)


def test_integers_are_decimal_as_in_yaml_1_2(tmp_path):
    spec = _load(tmp_path, MINIMAL + "fixed: {epochs: 010, batch_size: 0x40, embedding_dim: 0o20}\n")
    assert (spec.fixed.epochs, spec.fixed.batch_size, spec.fixed.embedding_dim) == (10, 64, 16)


def test_an_alias_bomb_is_refused_in_one_line(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]" for previous, name in zip("abcde", "bcdef")
    ]
    text = "\n".join(levels) + "\n" + MINIMAL + "params:\n  embedding_dim: {type: categorical, choices: *f}\n"
    message = _error(tmp_path, text)
    assert message.endswith("expands to more than 100000 values through aliases; expected a spec") and "\n" not in message


def test_a_huge_file_is_not_a_spec(tmp_path):
    message = _error(tmp_path, MINIMAL + "#" * 2**20 + "\n")
    assert "bytes; a spec is at most 1048576" in message


@pytest.mark.timeout(20)
def test_a_device_a_fifo_a_folder_or_binary_is_not_read_as_a_spec(tmp_path):
    """/dev/zero reports size 0 and never ends, a FIFO blocks its reader: neither is read at all."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    cases = {"/dev/zero": "/dev/zero: is not a regular file", str(fifo): "fifo.yaml: is not a regular file",
             str(tmp_path): "is a folder", str(binary): "binary.yaml: is not UTF-8 text (byte 6)"}
    for path, expected in cases.items():
        with pytest.raises(SpecError, match=re.escape(expected)):
            load_spec(path, ())


@pytest.mark.parametrize(
    "text, expected",
    [
        (MINIMAL + "model: ngcf\n", "spec.yaml:3: duplicate key 'model'"),
        ("name: exp\nmodel: !!python/object/apply:os.system ['true']\n", "tag:yaml.org,2002:python/object/apply:os.system"),
        ("name: [unclosed\n", "spec.yaml:2:"),
        (MINIMAL + "learning_rate: 0.1\n", "learning_rate: unknown key"),
        ("name: exp\nmodel: bert4rec\n", "model: unknown model 'bert4rec'"),
        (MINIMAL + "dataset: {name: netflix}\n", "dataset: unknown dataset 'netflix'"),
        (MINIMAL + "fixed: {lr: -1}\n", "fixed.lr: Input should be greater than 0"),
        (MINIMAL + "fixed: {k: []}\n", "fixed.k: needs at least one K"),
        (MINIMAL + "metric: test/recall@20\n", "model selection uses validation only"),
        (MINIMAL + "metric: val/recall@50\n", "metric: val/recall@50 uses K=50, which is not among fixed.k [10, 20]"),
        (MINIMAL + "dataset: {split: {test: 1.5}}\n", "dataset.split.test: Input should be less than 1"),
        ("name: ../escape\nmodel: mf\n", "name: '../escape' is not a safe directory name"),
        ("", "is empty"),
        ("- a\n- b\n", "expected a mapping at the top level"),
    ],
)
def test_bad_specs_give_one_line_errors_naming_the_field(tmp_path, text, expected):
    message = _error(tmp_path, text)
    assert expected in message
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'spec.yaml'}")  # every error names the file it is about


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_overrides(tmp_path):
    spec = _load(tmp_path, MINIMAL, ["epochs=3", "fixed.lr=1e-2", "dataset.split.seed=7", "model=mf"])
    assert (spec.fixed.epochs, spec.fixed.lr, spec.dataset.split.seed, spec.model) == (3, 0.01, 7, "mf")
    assert "--set 'nonsense': expected key=value" in _error(tmp_path, MINIMAL, ["nonsense"])
    assert "fixed.epochs: Input should be greater than or equal to 1" in _error(tmp_path, MINIMAL, ["epochs=0"])


def test_shipped_specs_are_valid():
    from pathlib import Path

    specs = sorted((Path(__file__).parents[1] / "search_spaces").rglob("*.yaml"))
    assert specs
    for path in specs:
        load_spec(path)


TUNING = MINIMAL + "params:\n"


@pytest.mark.parametrize(
    "params, expected",
    [
        ("  lr: {type: normal, low: 0, high: 1}", "params.lr.type: Input should be 'float', 'int' or 'categorical'"),
        ("  lr: {type: float, low: 0.1, high: 0.01}", "params.lr: low (0.1) is greater than high (0.01)"),
        ("  lr: {type: float, low: 0, high: 0.1, log: true}", "params.lr: log: a log-scaled range needs low > 0"),
        ("  embedding_dim: {type: categorical, choices: []}", "params.embedding_dim: choices: a categorical parameter needs"),
        ("  momentum: {type: float, low: 0, high: 1}", "params.momentum: lightgcn takes no hyperparameter momentum"),
        ("  epochs: {type: int, low: 1, high: 5}", "params.epochs: not a searchable hyperparameter"),
        ("  num_layers: {type: int, low: 1.5, high: 3}", "params.num_layers: an int parameter needs integer"),
        ("  lr: {type: float, low: 0.001, high: 0.1, colour: red}", "params.lr.colour: unknown key"),
    ],
)
def test_bad_search_spaces(tmp_path, params, expected):
    message = _error(tmp_path, TUNING + params + "\n")
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(
    "params, expected",
    [
        ("  regularization: {type: categorical, choices: [yes, no]}",
         "params.regularization.choices[0]: 'yes' is not a valid regularization (Input should be 'embedding_l2' or 'optimizer')"),
        ("  lr: {type: float, low: -1, high: 0.1}", "params.lr.low: -1.0 is not a valid lr (Input should be greater than 0)"),
        ("  batch_size: {type: categorical, choices: [0, -5]}", "params.batch_size.choices[0]: 0 is not a valid batch_size"),
        ("  embedding_dim: {type: categorical, choices: [8.5, abc]}", "params.embedding_dim.choices[0]: 8.5 is not a valid"),
        ("  embedding_dim: {type: categorical, choices: [8, abc]}", "params.embedding_dim.choices[1]: 'abc' is not a valid"),
        ("  embedding_dim: {type: float, low: 8, high: 64}", "params.embedding_dim.type: embedding_dim takes whole numbers"),
        ("  weight_decay: {type: float, low: -0.1, high: 0.1}", "params.weight_decay.low: -0.1 is not a valid weight_decay"),
        ("  num_layers: {type: int, low: 1, high: 100}", "params.num_layers.high: 100 is not a valid num_layers"),
        ("  lr: {type: float, low: 0.01, high: 0.01}", "params.lr: low and high are both 0.01; set fixed.lr instead"),
    ],
)
def test_every_value_a_search_can_draw_is_checked_before_anything_runs(tmp_path, params, expected):
    message = _error(tmp_path, TUNING + params + "\n")
    assert expected in message and "\n" not in message


def test_dropout_is_checked_against_its_bounds(tmp_path):
    text = TUNING.replace("model: lightgcn", "model: ngcf") + "  dropout: {type: float, low: 0.1, high: 1.5}\n"
    assert "params.dropout.high: 1.5 is not a valid dropout (Input should be less than 1)" in _error(tmp_path, text)


def test_gat_searches_at_least_one_layer(tmp_path):
    text = TUNING.replace("model: lightgcn", "model: gat") + "  num_layers: {type: int, low: 0, high: 2}\n"
    assert ("params.num_layers.low: 0 is not a valid num_layers (Input should be greater than or equal to 1)"
            in _error(tmp_path, text))


def test_searched_and_fixed_is_an_error(tmp_path):
    message = _error(tmp_path, TUNING + "  lr: {type: float, low: 0.001, high: 0.1}\nfixed: {lr: 0.01}\n")
    assert "params.lr: is also set in fixed" in message


def test_grid_sampler_needs_enumerable_values(tmp_path):
    text = TUNING + "  lr: {type: float, low: 0.001, high: 0.1}\nsearch: {sampler: grid}\n"
    assert "params.lr.step: the grid sampler needs a step" in _error(tmp_path, text)
    spec = _load(tmp_path, TUNING + "  lr: {type: float, low: 0.01, high: 0.03, step: 0.01}\n"
                 "  num_layers: {type: int, low: 1, high: 3}\nsearch: {sampler: grid}\n")
    assert spec.params["lr"].grid_values() == [0.01, 0.02, 0.03] and spec.grid_size() == 9


def test_tuning_needs_a_validation_set(tmp_path):
    text = TUNING + "  lr: {type: float, low: 0.001, high: 0.1}\ndataset: {split: {val: 0}}\n"
    assert "dataset.split.val: tuning selects on validation" in _error(tmp_path, text)


def test_trial_hyperparameters_fill_the_fixed_block(tmp_path):
    spec = _load(tmp_path, TUNING + "  lr: {type: float, low: 0.001, high: 0.1}\nfixed: {epochs: 7}\n")
    hp = spec.trial_hyperparameters({"lr": 0.05})
    assert (hp.lr, hp.epochs, hp.model_values()) == (0.05, 7, {})  # the model's defaults: with_model_defaults


def test_json_schema_lists_every_section():
    from tuner.spec import ExperimentSpec

    schema = ExperimentSpec.model_json_schema()
    top_level = {"name", "model", "dataset", "fixed", "params", "search", "scheduler", "resources", "failure", "storage"}
    assert top_level <= set(schema["properties"])


def test_fixing_a_searched_value_wins_for_a_single_training_run(tmp_path):
    text = TUNING + "  embedding_dim: {type: categorical, choices: [32, 64]}\n  lr: {type: float, low: 0.001, high: 0.1}\n"
    assert "is also set in fixed" in _error(tmp_path, text, ["embedding_dim=16"])  # tuning: either searched or fixed
    path = tmp_path / "spec.yaml"
    spec = load_spec(path, ["embedding_dim=16"], fixing_wins=True)  # tuner train
    assert spec.fixed.embedding_dim == 16 and list(spec.params) == ["lr"]


def test_searching_what_the_model_does_not_use_is_an_error(tmp_path):
    text = MINIMAL.replace("lightgcn", "mf") + "params:\n  num_layers: {type: int, low: 1, high: 3}\n"
    assert "params.num_layers: mf takes no hyperparameter num_layers; its own: embedding_dim; training:" in _error(
        tmp_path, text)
    text = MINIMAL + "params:\n  dropout: {type: float, low: 0.0, high: 0.5}\n"
    assert "params.dropout: lightgcn takes no hyperparameter dropout" in _error(tmp_path, text)
    assert "fixed.heads: lightgcn takes no hyperparameter heads" in _error(tmp_path, MINIMAL, ["heads=2"])


@pytest.mark.parametrize("text, expected", [
    ("fixed: {weight_decay: .inf}\n", "fixed.weight_decay: Input should be a finite number"),
    ("params:\n  lr: {type: float, low: 0.001, high: .inf, log: true}\n", "params.lr.high: Input should be a finite number"),
    ("params:\n  lr: {type: float, low: .nan, high: 0.1}\n", "params.lr.low: Input should be a finite number"),
])
def test_every_number_is_finite(tmp_path, text, expected):
    assert expected in _error(tmp_path, MINIMAL + text)


@pytest.mark.parametrize("text, expected", [
    ("name: runs.lock\nmodel: mf\n", "name: 'runs.lock': a name ending in .lock is the lock file of experiment 'runs'"),
    (MINIMAL + "fixed: {seed: -1}\n", "fixed.seed: Input should be greater than or equal to 0"),
    (MINIMAL + "fixed: {seed: 4294967296}\n", "fixed.seed: Input should be less than or equal to 4294967295"),
    (MINIMAL + "search: {seed: -5}\n", "search.seed: Input should be greater than or equal to 0"),
    (MINIMAL + "search: {sampler: grid}\nparams: {lr: {type: categorical, choices: [0.1]}}\nseeds: [-1]\n",
     "seeds.0: Input should be greater than or equal to 0"),
    (MINIMAL + "logging: {mlflow: 'htp://host:5000'}\n", "logging.mlflow: expected true, false or an MLflow tracking URI"),
    (MINIMAL + "logging: {mlflow: ''}\n", "logging.mlflow: expected true, false or an MLflow tracking URI"),
])
def test_values_that_used_to_fail_only_once_the_run_had_started_are_refused_by_validate(tmp_path, text, expected):
    """Each passed `tuner validate`, then failed every trial (a seed numpy refuses), crashed the run (Optuna's seed,
    an MLflow URI), or took another experiment's lock file for its folder."""
    message = _error(tmp_path, text)
    assert expected in message and "\n" not in message


def test_mlflow_takes_a_server_a_database_or_a_folder(tmp_path):
    for uri in ("http://localhost:5000", "sqlite:///mlflow.db", "postgresql+psycopg2://u@h/db", "databricks", "./mlruns"):
        assert _load(tmp_path, MINIMAL + f"logging: {{mlflow: '{uri}'}}\n").logging.mlflow == uri


def test_asha_that_can_stop_no_trial_is_said_not_refused(tmp_path):
    """Lowering the epochs for a quick run (`--set epochs=2`) leaves ASHA's grace period above them: allowed, said."""
    spec = _load(tmp_path, MINIMAL + "fixed: {epochs: 20}\nscheduler: {kind: asha, grace_period: 20}\n")
    assert spec.scheduler_note() == ("note: scheduler.grace_period 20 is not below the 20 epochs a trial runs: ASHA "
                                     "stops no trial in this run")
    assert _load(tmp_path, MINIMAL + "fixed: {epochs: 21}\nscheduler: {kind: asha, grace_period: 20}\n").scheduler_note() is None
