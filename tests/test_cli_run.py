"""`tuner run / best / records / report / validate / schema` as a user runs them (tiny synthetic data; the experiment
they share is made by one `tuner run` subprocess, the rest runs in this process). Its storage is a file:// URI, so that
records, checkpoints, spec and study go through pyarrow's filesystems as they do for s3:// or gs://."""

import json

import pandas as pd
import pytest

from tests.cli import tuner, tuner_subprocess
from tests.conftest import epochs_written
from tuner.experiment import records

pytestmark = pytest.mark.slow

SPEC = """\
name: e2e
model: lightgcn
dataset:
  name: synthetic
  synthetic: {num_users: 60, num_items: 40, interactions_per_user: 10}
metric: val/recall@10
fixed: {embedding_dim: 8, batch_size: 128, epochs: 3, eval_every: 1, k: [5, 10]}
params:
  lr: {type: float, low: 1e-3, high: 1e-1, log: true}
  num_layers: {type: int, low: 1, high: 2}
search: {sampler: tpe, num_samples: 3, max_concurrent: 2}
scheduler: {kind: none}
"""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    (folder / "spec.yaml").write_text(SPEC)
    result = tuner_subprocess("run", "spec.yaml", "--storage", _uri(folder), cwd=folder)
    return folder, result


def _uri(folder) -> str:
    """The experiments' storage as a URI: file://<folder>/out, the same folder as the plain path <folder>/out."""
    return f"file://{folder}/out"


def test_run_summarises_and_exits_zero(experiment):
    folder, result = experiment
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "best trial" in result.stdout and "trials: 3 of 3 — 3 finished" in result.stdout
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/3", "[2/3", "[3/3"]  # one line per ended trial
    assert all(" finished: val/recall@10 " in line and "lr=" in line for line in progress)
    assert len(result.stdout.splitlines()) < 20  # not Tune's tables
    assert result.stderr == ""  # nor Ray's log lines (its token-authentication notice included)
    assert (folder / "out" / "e2e" / "optuna.db").is_file()
    assert epochs_written(folder / "out" / "e2e" / "records") == {t: 3 for t in _trial_ids(folder)}
    assert not list((folder / "out" / "e2e" / "records").glob("*/epoch=*.parquet"))  # ended trials are compacted


def _trial_ids(folder):
    return [p.name for p in (folder / "out" / "e2e" / "records").iterdir()]


def test_records_export_one_row_per_trial_epoch(experiment):
    folder, _ = experiment
    result = tuner("records", "e2e", "--storage", "out", cwd=folder)
    assert result.returncode == 0, result.stderr
    (folder / "records.csv").write_text(result.stdout)
    frame = pd.read_csv(folder / "records.csv")
    assert len(frame) == 9 and not frame.duplicated(["trial_id", "epoch"]).any()
    assert set(frame["stop_reason"].dropna()) == {"finished"}
    parquet = tuner("records", "e2e", "--storage", "out", "--format", "parquet", "--out", "r.parquet", cwd=folder)
    assert parquet.returncode == 0 and len(pd.read_parquet(folder / "r.parquet")) == 9


def test_best_config_trains_to_the_same_numbers(experiment):
    folder, _ = experiment
    result = tuner("best", "e2e", "--storage", _uri(folder), "--out", "best.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    header, how_to_run = (folder / "best.yaml").read_text().splitlines()[:2]
    options = how_to_run.split("<this file> ")[1].split()  # as the header says: the trial's threads
    train = tuner("train", "best.yaml", *options, "--output", "best.json", cwd=folder)
    assert train.returncode == 0, train.stderr
    trained = json.loads((folder / "best.json").read_text())
    frame = records.load(str(folder / "out" / "e2e"))
    trial_id = header.split("trial ")[1].split()[0]
    rows = frame[frame["trial_id"].astype(str) == trial_id].sort_values("epoch")
    assert [e["loss"] for e in trained["epochs"]] == pytest.approx(list(rows["loss"]), rel=1e-9)
    assert trained["best_metrics"]["test/recall@10"] == pytest.approx(
        rows.loc[rows["epoch"] == trained["best_epoch"], "test/recall@10"].item(), abs=1e-12
    )


def test_rerun_with_a_changed_spec_is_refused(experiment):
    folder, _ = experiment
    result = tuner("run", "spec.yaml", "--storage", _uri(folder), "--set", "fixed.epochs=4", cwd=folder)
    assert result.returncode == 2
    assert "was started with another spec (changed: fixed.epochs)" in result.stderr


def test_rerun_of_a_finished_experiment_changes_nothing(experiment):
    folder, _ = experiment
    result = tuner("run", "spec.yaml", "--storage", _uri(folder), cwd=folder)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "trials: 3 of 3 — 3 finished" in result.stdout
    assert sum(epochs_written(folder / "out" / "e2e" / "records").values()) == 9


def test_report_reads_the_experiment_through_its_uri(experiment):
    folder, _ = experiment
    assert len(records.load(f"{_uri(folder)}/e2e")) == 9
    report = tuner("report", "e2e", "--storage", _uri(folder), cwd=folder)
    assert report.returncode == 0, report.stderr
    assert (folder / "e2e-report" / "report.html").is_file()


def test_trials_asking_for_a_gpu_this_machine_lacks_are_refused_before_anything_is_written(tmp_path):
    """They would wait for a GPU forever on the local Ray instance tuner starts (on a cluster, tuner only warns: an
    autoscaling cluster may add such a node)."""
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = tuner("run", "spec.yaml", "--storage", "out", "--set", "resources.cpu=1", "--set", "resources.gpu=1",
                   cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: resources.gpu: each trial asks for 1 GPU, but Ray has no GPU on this machine; ask for less, or leave "
        "resources: auto")
    assert not (tmp_path / "out" / "e2e").exists()


def test_optuna_dashboard_opens_the_exported_study(experiment):
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard import wsgi

    folder, _ = experiment
    app = wsgi(f"sqlite:///{folder / 'out' / 'e2e' / 'optuna.db'}")
    environ: dict = {"PATH_INFO": "/api/studies", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200")
    studies = json.loads(body)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["e2e"] and studies[0]["directions"] == ["maximize"]
