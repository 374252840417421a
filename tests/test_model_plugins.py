"""A researcher's own model: found by import path (from the spec's folder) or by an entry point of an installed
package, its own hyperparameters as first-class as lr, and every broken one refused in one line before anything
runs. The models here are written in temporary folders, outside the package, as a user writes them."""

import json
import textwrap
import uuid

import pandas as pd
import pytest

from tests.cli import tuner, tuner_subprocess
from tuner.experiment import records

# A model with two hyperparameters of its own (`scale`, `smoothing`) and an auxiliary loss.
PLUGIN = '''
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from tuner import Recommender


class Scaled(Recommender):
    def __init__(self, num_users: int, num_items: int, train: Tensor, embedding_dim: int = 8,
                 scale: Annotated[float, Field(gt=0)] = 1.0, smoothing: Annotated[float, Field(ge=0, le=1)] = 0.0):
        super().__init__(num_users, num_items, embedding_dim)
        self.scale, self.smoothing = scale, smoothing
        self.register_buffer("degree", torch.bincount(train[0], minlength=num_users).float())

    def forward(self):
        return self.user_embedding.weight * self.scale, self.item_embedding.weight

    def auxiliary_loss(self, users, positives, negatives, user_embeddings, item_embeddings):
        return self.smoothing * item_embeddings[positives].pow(2).sum(1).mean()
'''

SPEC = """\
name: own-model
model: {module}:Scaled
dataset:
  name: synthetic
  synthetic: {{num_users: 60, num_items: 40, interactions_per_user: 10}}
metric: val/recall@10
fixed: {{batch_size: 128, epochs: 2, eval_every: 1, k: [5, 10]}}
"""


def _plugin(folder, source=PLUGIN, name=None):
    """A model module in `folder`, under a name of its own (imported modules stay cached for the test session)."""
    name = name or f"plugin_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def _spec(folder, module, extra=""):
    path = folder / "spec.yaml"
    text = SPEC.format(module=module) + extra
    if (folder / "log.csv").exists():  # the researcher's own data too
        text = text.replace("  name: synthetic\n  synthetic: {num_users: 60, num_items: 40, interactions_per_user: 10}",
                            f"  name: interactions\n  path: {folder / 'log.csv'}")
    path.write_text(text)
    return path


def _own_interaction_log(path):
    """A CSV with string ids, as a researcher's log: the synthetic dataset's edges under other names."""
    from tuner.recsys.data import SyntheticSpec
    from tuner.recsys.data.synthetic import generate

    log = generate(SyntheticSpec(num_users=60, num_items=40, interactions_per_user=10))
    pd.DataFrame({"user": [f"user-{u}" for u in log.users], "item": [f"item-{i}" for i in log.items]}).to_csv(
        path, index=False)


def _one_line_error(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_a_model_in_the_specs_folder_is_validated_from_any_directory(tmp_path):
    module = _plugin(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = tuner("validate", _spec(tmp_path, module, "params:\n  scale: {type: float, low: 0.5, high: 2}\n"),
                   cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert f"{module}:Scaled on synthetic, searching scale" in result.stdout


BROKEN = {
    "missing module": ("", "model: no_such_module_here:Scaled: cannot import no_such_module_here "
                           "(ModuleNotFoundError"),
    "missing class": ("x = 1\n", "has no Scaled"),
    "not a class": ("def Scaled():\n    pass\n", "is a function, not a subclass of tuner.Recommender"),
    "not a Recommender": ("class Scaled:\n    pass\n", "is a class", ),
    "no forward": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                   "    def __init__(self, num_users: int, num_items: int, d: int = 4):\n"
                   "        super().__init__(num_users, num_items, d)\n", "does not define forward()"),
    "no annotation": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                      "    def __init__(self, num_users: int, num_items: int, d=4):\n"
                      "        super().__init__(num_users, num_items, d)\n"
                      "    def forward(self):\n        return self.user_embedding.weight, self.item_embedding.weight\n",
                      "hyperparameter d has no type annotation"),
    "no default": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                   "    def __init__(self, num_users: int, num_items: int, d: int):\n"
                   "        super().__init__(num_users, num_items, d)\n"
                   "    def forward(self):\n        return self.user_embedding.weight, self.item_embedding.weight\n",
                   "hyperparameter d has no default"),
    "unsupported type": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                         "    def __init__(self, num_users: int, num_items: int, sizes: list = [4]):\n"
                         "        super().__init__(num_users, num_items, sizes[0])\n"
                         "    def forward(self):\n        return self.user_embedding.weight, self.item_embedding.weight\n",
                         "hyperparameter sizes is annotated list; expected int, float, bool, str or a Literal"),
    "invalid default": ("from typing import Annotated\nfrom pydantic import Field\nfrom tuner import Recommender\n"
                        "class Scaled(Recommender):\n"
                        "    def __init__(self, num_users: int, num_items: int, d: Annotated[int, Field(ge=8)] = 4):\n"
                        "        super().__init__(num_users, num_items, d)\n"
                        "    def forward(self):\n        return self.user_embedding.weight, self.item_embedding.weight\n",
                        "the default of hyperparameter d is not valid (Input should be greater than or equal to 8)"),
    "wrong shapes": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                     "    def __init__(self, num_users: int, num_items: int, d: int = 4):\n"
                     "        super().__init__(num_users, num_items, d)\n"
                     "    def forward(self):\n        return self.item_embedding.weight, self.user_embedding.weight\n",
                     "forward() returned (a (5, 4) float32 tensor, a (4, 4) float32 tensor) on a graph of 4 users and 5 "
                     "items; expected (user embeddings (4, d), item embeddings (5, d))"),
    "integer embeddings": ("import torch\nfrom tuner import Recommender\nclass Scaled(Recommender):\n"
                           "    def __init__(self, num_users: int, num_items: int, d: int = 4):\n"
                           "        super().__init__(num_users, num_items, d)\n"
                           "    def forward(self):\n"
                           "        return torch.zeros(4, 2, dtype=torch.long), torch.zeros(5, 2, dtype=torch.long)\n",
                           "forward() returned (a (4, 2) int64 tensor, a (5, 2) int64 tensor)"),
    "one tensor": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                   "    def __init__(self, num_users: int, num_items: int, d: int = 4):\n"
                   "        super().__init__(num_users, num_items, d)\n"
                   "    def forward(self):\n        return self.user_embedding.weight\n",
                   "forward() returned a (4, 4) float32 tensor; expected (user embeddings"),
    "vector loss": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                    "    def __init__(self, num_users: int, num_items: int, d: int = 4):\n"
                    "        super().__init__(num_users, num_items, d)\n"
                    "    def forward(self):\n        return self.user_embedding.weight, self.item_embedding.weight\n"
                    "    def auxiliary_loss(self, users, positives, negatives, u, i):\n        return u.sum(1)\n",
                    "auxiliary_loss() returned a (4,) float32 tensor; expected a scalar float tensor or None"),
    "constructor raises": ("from tuner import Recommender\nclass Scaled(Recommender):\n"
                           "    def __init__(self, num_users: int, num_items: int, d: int = 4):\n"
                           "        raise RuntimeError('needs a GPU')\n"
                           "    def forward(self):\n        pass\n",
                           "building it on a tiny graph raised RuntimeError: needs a GPU"),
    "import raises": ("import torch_scatter_not_installed\n", "(ModuleNotFoundError: No module named "
                                                              "'torch_scatter_not_installed')"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_model_is_one_line_before_anything_is_written(tmp_path, case):
    source, expected = BROKEN[case]
    module = "no_such_module_here" if case == "missing module" else _plugin(tmp_path, source)
    spec = _spec(tmp_path, module)
    line = _one_line_error(tuner("validate", spec))
    assert line.startswith(f"error: {spec}: model: ") and expected in line, line
    if case in ("no forward", "wrong shapes"):  # tuner run refuses the same way, and writes nothing
        assert _one_line_error(tuner("run", spec, "--storage", tmp_path / "out")) == line
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, expected", [
    ("--set fixed.scale=0", "fixed.scale: Input should be greater than 0"),
    ("--set fixed.smoothing=high", "fixed.smoothing: Input should be a valid number"),
    ("--set fixed.temperature=0.2", "fixed.temperature: {module}:Scaled takes no hyperparameter temperature; its own: "
                                    "embedding_dim, scale, smoothing; training: lr,"),
    ("params:\n  smoothing: {type: float, low: 0, high: 2}\n",
     "params.smoothing.high: 2.0 is not a valid smoothing (Input should be less than or equal to 1)"),
    ("params:\n  scale: {type: categorical, choices: [1, -1]}\n",
     "params.scale.choices[1]: -1 is not a valid scale (Input should be greater than 0)"),
    ("params:\n  momentum: {type: float, low: 0.1, high: 0.9}\n", "params.momentum: {module}:Scaled takes no "
                                                                 "hyperparameter momentum"),
])
def test_a_models_own_hyperparameters_are_checked_against_its_annotations(tmp_path, extra, expected):
    module = _plugin(tmp_path)
    overrides = extra.split() if extra.startswith("--set") else []
    line = _one_line_error(tuner("validate", _spec(tmp_path, module, "" if overrides else extra), *overrides))
    assert expected.format(module=module) in line


def test_set_reaches_a_models_own_hyperparameters(tmp_path):
    module = _plugin(tmp_path)
    assert tuner("validate", _spec(tmp_path, module), "--set", "scale=0.5").returncode == 0
    assert "fixed.scale: Input should be greater than 0" in _one_line_error(
        tuner("validate", _spec(tmp_path, module), "--set", "scale=-1"))


def _install_distribution(site, monkeypatch):
    """A tiny installed distribution `tuner-demo-models` registering `demo` under tuner.models: its dist-info on
    sys.path, as pip leaves one."""
    package = site / "tuner_demo_models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "tuner_demo_models-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tuner-demo-models\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[tuner.models]\ndemo = tuner_demo_models:Scaled\n")
    monkeypatch.syspath_prepend(str(site))


def test_an_installed_packages_model_is_listed_and_trains(tmp_path, monkeypatch):
    _install_distribution(tmp_path / "site", monkeypatch)
    listed = tuner("models")
    assert listed.returncode == 0, listed.stderr
    assert "demo  (tuner_demo_models:Scaled, tuner-demo-models 1.2.3)" in listed.stdout
    assert "lightgcn  (tuner.recsys.models.lightgcn:LightGCN, tuner " in listed.stdout  # the built-ins, the same way
    lines = listed.stdout.splitlines()
    demo = lines.index("demo  (tuner_demo_models:Scaled, tuner-demo-models 1.2.3)")
    assert lines[demo + 2].split() == ["scale", "float", "default", "1.0", ">", "0"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(module="x").replace("model: x:Scaled", "model: demo"))
    trained = tuner("train", spec, "--set", "scale=0.5", "--output", tmp_path / "out.json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "out.json").read_text())["spec"]["fixed"]["scale"] == 0.5


def test_two_packages_registering_one_name_is_one_line(tmp_path, monkeypatch):
    _install_distribution(tmp_path / "site", monkeypatch)
    info = tmp_path / "site" / "tuner_demo_models-1.2.3.dist-info" / "entry_points.txt"
    info.write_text("[tuner.models]\nlightgcn = tuner_demo_models:Scaled\n")
    line = _one_line_error(tuner("models"))
    assert "model: lightgcn is registered by tuner (tuner.recsys.models.lightgcn:LightGCN) and by tuner-demo-models" in line


@pytest.mark.slow
def test_a_model_in_a_temporary_folder_is_tuned_two_trials_at_once_and_its_best_trial_reproduced(tmp_path):
    models = tmp_path / "my-research"
    models.mkdir()
    module = _plugin(models)
    _own_interaction_log(models / "log.csv")
    spec = _spec(models, module, "params:\n  scale: {type: float, low: 0.5, high: 2.0}\n"
                                 "  smoothing: {type: categorical, choices: [0.0, 0.1]}\n"
                                 "  lr: {type: float, low: 0.005, high: 0.05}\n"
                                 "search: {num_samples: 4, max_concurrent: 2}\nscheduler: {kind: none}\n")
    elsewhere = tmp_path / "elsewhere"  # run from another folder: the model is found in the spec's folder
    elsewhere.mkdir()
    run = tuner_subprocess("run", spec, "--storage", tmp_path / "out", cwd=elsewhere)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "own-model: 2 trials at once" in run.stdout and "trials: 4 of 4 — 4 finished" in run.stdout
    frame = records.load(str(tmp_path / "out" / "own-model"))
    assert len(frame) == 8 and {"param_scale", "param_smoothing", "param_embedding_dim"} <= set(frame.columns)
    assert frame["param_scale"].between(0.5, 2.0).all() and set(frame["param_smoothing"]) <= {0.0, 0.1}
    assert (frame["param_embedding_dim"] == 8).all()  # not searched: the model's default, recorded
    provenance = json.loads((tmp_path / "out" / "own-model" / "provenance.json").read_text())
    assert provenance["model"]["file"] == str(models / f"{module}.py") and len(provenance["model"]["sha256"]) == 64
    manifest = json.loads(next((tmp_path / "out" / "own-model" / "manifests").iterdir()).read_text())
    assert manifest["model"] == provenance["model"]
    assert "scale" in (tmp_path / "out" / "own-model" / "optuna.db").read_bytes().decode("latin-1")
    users = pd.read_parquet(tmp_path / "out" / "own-model" / "ids" / "users.parquet")
    assert users["original"].str.startswith("user-").all() and list(users["id"]) == list(range(len(users)))

    best = tuner("best", tmp_path / "out" / "own-model", "--out", models / "best.yaml", cwd=elsewhere)
    assert best.returncode == 0, best.stderr
    header, how_to_run = (models / "best.yaml").read_text().splitlines()[:2]
    options = how_to_run.split("<this file> ")[1].split()
    train = tuner("train", models / "best.yaml", *options, "--output", tmp_path / "best.json", cwd=elsewhere)
    assert train.returncode == 0, train.stderr
    trained = json.loads((tmp_path / "best.json").read_text())
    trial = frame[frame["trial_id"].astype(str) == header.split("trial ")[1].split()[0]].sort_values("epoch")
    assert trained["spec"]["fixed"]["scale"] == trial["param_scale"].iloc[0]  # its own hyperparameters exported
    assert [e["loss"] for e in trained["epochs"]] == list(trial["loss"])  # bit for bit
    assert trained["best_metrics"]["test/recall@10"] == trial.loc[
        trial["epoch"] == trained["best_epoch"], "test/recall@10"].item()
