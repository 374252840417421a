"""The example a user copies: SimGCL (examples/simgcl.py), tuned through its import path as any user's model, and
the commands docs/models.md shows for it."""

import json
from pathlib import Path

import pytest

from tests.cli import tuner

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "simgcl.yaml"
ON_SYNTHETIC = ["dataset.name=synthetic", "dataset.rating_threshold=null", "batch_size=256", "eval_every=1"]


def test_the_simgcl_spec_validates_from_any_folder(tmp_path):
    result = tuner("validate", SPEC, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "simgcl:SimGCL on movielens-100k, searching num_layers, weight_decay, lr, eps, cl_weight" in result.stdout


def test_tuner_models_describes_simgcl_by_its_import_path():
    result = tuner("models", "examples.simgcl:SimGCL", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert rows["eps"] == ["float", "default", "0.1", ">", "0"]
    assert rows["num_layers"] == ["int", "default", "2", ">=", "1,", "<=", "8"]


def test_simgcl_trains_with_its_contrastive_loss_added_to_bpr(tmp_path):
    overrides = [x for o in ON_SYNTHETIC + ["epochs=2", "cl_weight=0.5"] for x in ("--set", o)]
    result = tuner("train", SPEC, *overrides, "--output", tmp_path / "out.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    epochs = json.loads((tmp_path / "out.json").read_text())["epochs"]
    assert all(e["loss"] > e["bpr_loss"] + 0.1 for e in epochs)  # InfoNCE of two noisy views adds a positive term


@pytest.mark.slow
@pytest.mark.integration
def test_the_simgcl_smoke_run_of_the_docs(shared_data, tmp_path):
    result = tuner("run", SPEC, "--smoke", "--data-dir", shared_data, "--storage", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "trials: 2 of 2 — " in result.stdout and "0 failed, 0 diverged" in result.stdout
