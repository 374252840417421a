"""`tuner train`, `tuner datasets` and the one-line errors of every command: output and exit code as a user sees
them (in this process; `train` also once as a subprocess)."""

import json
import os

import pytest

from tests.cli import tuner, tuner_subprocess

SYNTHETIC_SPEC = """\
name: cli-smoke
model: lightgcn
dataset:
  name: synthetic
  synthetic: {num_users: 60, num_items: 40, interactions_per_user: 10}
  split: {kind: random, test: 0.2, val: 0.1, seed: 0}
metric: val/recall@10
fixed: {embedding_dim: 8, num_layers: 2, epochs: 3, batch_size: 128, k: [5, 10]}
"""


def _spec(tmp_path, text=SYNTHETIC_SPEC):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_train_prints_epochs_and_final_metrics_and_writes_json(tmp_path):
    previous = os.umask(0o022)  # the command inherits it: its JSON must be as readable as any new file
    try:
        result = tuner_subprocess("train", _spec(tmp_path), "--set", "eval_every=1", "--output", tmp_path / "out.json")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("synthetic: 60 users, 40 items")  # what it trains on, before the first epoch
    assert lines[1].split()[:4] == ["epoch", "loss", "train", "s"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert "best epoch" in result.stdout and "MostPop baseline" in result.stdout
    for split in ("train", "val", "test"):
        assert any(line.startswith(split) for line in lines)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["best_metrics"]["test/recall@10"] >= 0 and len(out["epochs"]) == 3 and out["split_hash"]


def _one_line_error(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("dataset.name=netflix", "dataset: unknown dataset 'netflix'"),
        ("model=bert4rec", "model: unknown model 'bert4rec'"),
        ("dataset.split.test=0.0001", "dataset.split.test: the test set of synthetic is empty"),
        ("k=[10, 50]", "fixed.k: K=50 is larger than the number of items (40)"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, override, expected):
    error = _one_line_error(tuner("train", _spec(tmp_path), "--set", override))
    assert expected in error


def test_missing_files_offline(tmp_path):
    spec = _spec(tmp_path, "name: x\nmodel: mf\ndataset: {name: movielens-1m}\n")
    error = _one_line_error(tuner("train", spec, "--data-dir", tmp_path / "data"))
    assert "ratings.dat not found in" in error and "ml-1m.zip" in error


def test_user_with_every_item(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 0\n")
    (tmp_path / "test.txt").write_text("1 1\n")
    spec = _spec(tmp_path, f"name: x\nmodel: mf\ndataset: {{name: lightgcn-format, path: {tmp_path}, "
                           "split: {kind: given, val: 0.0}}\nfixed: {k: [1]}\nmetric: val/recall@1\n")
    error = _one_line_error(tuner("train", spec))
    assert "user 0" in error and "every one of the 3 items" in error


def test_datasets_lists_every_dataset_and_its_files(tmp_path):
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "ratings.dat").write_text("1::1::5::0\n")
    result = tuner("datasets", "--data-dir", tmp_path)
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "present" in rows["movielens-1m"] and "missing" in rows["movielens-100k"]
    assert "from https://files.grouplens.org/datasets/movielens/ml-100k.zip\n" in result.stdout  # whole, not cut
    assert set(rows) >= {"gowalla", "yelp2018", "amazon-book", "lightgcn-format", "synthetic"}


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--device", "tpu"], "error: --device: expected auto, cpu or cuda, got 'tpu'"),
        (["--threads", "-1"], "error: --threads: expected a number of threads >= 1, got -1"),
    ],
)
def test_bad_train_options_are_one_line(tmp_path, arguments, expected):
    assert _one_line_error(tuner("train", _spec(tmp_path), *arguments)) == expected


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path):
    error = _one_line_error(tuner("train", _spec(tmp_path), "--device", "cuda"))
    assert "error: --device: cuda asked for, but this torch" in error


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["run", "{spec}", "--fresh", "--resume-errored"],
         "error: --fresh, --resume-errored, --restart-errored: use at most one of them"),
        (["run", "{spec}", "--num-samples", "0"], "search.num_samples: Input should be greater than or equal to 1"),
        (["run", "{spec}", "--max-concurrent", "0"],
         "search.max_concurrent: expected auto or a whole number of trials >= 1, got 0"),
        (["run", "{spec}", "--storage", "{file}"], "storage: {file} is a file; expected a folder or a URI"),
        (["run", "{spec}", "--storage", "{file}/runs"],
         "error: {file}/runs: cannot be made a folder (a folder above it is a file); expected a folder or a URI"),
        (["report", "{experiment}", "--out", "{file}"], "error: --out: {file} is a file; expected a folder for the report"),
        (["records", "{experiment}", "--out", "/missing/records.csv"], "error: --out: /missing is not a folder"),
        (["best", "{experiment}", "--out", "/missing/best.yaml"], "error: /missing/best.yaml: No such file or directory"),
    ],
)
def test_bad_paths_and_flags_are_one_line(tmp_path, arguments, expected):
    """Each checked before anything runs (no Ray started): a path that cannot be used, a flag out of range."""
    from tests.fake_experiment import ablation_spec, write_trial
    from tuner.recsys.hyperparameters import Hyperparameters

    experiment = tmp_path / "runs" / "fake"
    ablation_spec(str(experiment))
    write_trial(str(experiment), "t1", Hyperparameters(weight_decay=0.0, k=[10]), [{"val/recall@10": 0.2}])
    (tmp_path / "a-file").write_text("")
    values = {"spec": _spec(tmp_path), "file": tmp_path / "a-file", "experiment": experiment}
    error = _one_line_error(tuner(*[a.format(**values) for a in arguments]))
    assert expected.format(**values) in error


class _InterruptAtEpoch:
    """Ctrl-C at the start of these epochs (what KeyboardInterrupt from SIGINT or SIGTERM does to the loop)."""

    def __init__(self, *epochs):
        self.epochs = epochs

    def on_epoch_start(self, trainer, epoch):
        if epoch in self.epochs:
            raise KeyboardInterrupt

    def on_batch_loss(self, trainer, epoch, loss):
        return loss


def _epochs_without_times(path):
    return [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in json.loads(path.read_text())["epochs"]]


def test_an_interrupted_train_resumes_from_its_checkpoint_as_if_never_stopped(tmp_path, monkeypatch):
    from tuner.recsys import training

    spec = _spec(tmp_path)
    common = ["--set", "epochs=4", "--set", "eval_every=1", "--set", "failure.checkpoint_every=2"]
    assert tuner("train", spec, *common, "--output", tmp_path / "whole.json").returncode == 0

    checkpoint = tmp_path / "run.ckpt"
    monkeypatch.setattr(training, "PROCESS_CALLBACKS", [_InterruptAtEpoch(4)])
    stopped = tuner("train", spec, *common, "--checkpoint", checkpoint)
    assert stopped.returncode == 130 and f"continues from the last checkpoint in {checkpoint}" in stopped.stderr
    monkeypatch.setattr(training, "PROCESS_CALLBACKS", [_InterruptAtEpoch(1, 2)])  # saved: they must not run again
    resumed = tuner("train", spec, *common, "--checkpoint", checkpoint, "--output", tmp_path / "resumed.json")
    assert resumed.returncode == 0, resumed.stderr
    assert [line.split()[0] for line in resumed.stdout.splitlines()[2:6]] == ["1", "2", "3", "4"]
    assert _epochs_without_times(tmp_path / "resumed.json") == _epochs_without_times(tmp_path / "whole.json")


def test_a_checkpoint_trains_longer_but_refuses_other_hyperparameters(tmp_path):
    spec, checkpoint = _spec(tmp_path), tmp_path / "run.ckpt"
    assert tuner("train", spec, "--set", "epochs=2", "--checkpoint", checkpoint).returncode == 0
    longer = tuner("train", spec, "--set", "epochs=3", "--checkpoint", checkpoint, "--output", tmp_path / "out.json")
    assert longer.returncode == 0 and len(json.loads((tmp_path / "out.json").read_text())["epochs"]) == 3
    assert _one_line_error(tuner("train", spec, "--set", "lr=0.5", "--checkpoint", checkpoint)) == (
        f"error: --checkpoint: {checkpoint} was written by a run with another model, split or hyperparameters; "
        "remove it or choose another file")
    assert _one_line_error(tuner("train", spec, "--set", "epochs=1", "--checkpoint", checkpoint)) == (
        f"error: --checkpoint: {checkpoint} holds 3 epochs, more than fixed.epochs=1; raise epochs or choose another file")
    (tmp_path / "junk").write_text("not a checkpoint")
    assert "is not a tuner train checkpoint" in _one_line_error(tuner("train", spec, "--checkpoint", tmp_path / "junk"))


def test_sigterm_stops_train_like_ctrl_c_and_keeps_the_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    checkpoint = tmp_path / "run.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner", "train", str(_spec(tmp_path)), "--set", "epochs=100000",
         "--set", "failure.checkpoint_every=1", "--checkpoint", str(checkpoint)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TUNER_OFFLINE": "1"})
    while not checkpoint.exists() and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "Traceback" not in stderr
    assert stderr.splitlines()[-2:] == [f"the same command continues from the last checkpoint in {checkpoint}",
                                        "interrupted"]
