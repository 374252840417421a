"""Commands that check what they are given without running anything: `tuner validate`, `tuner schema`, and a
command naming an experiment that is not there (in this process, on tiny specs)."""

import json

from tests.cli import tuner
from tests.test_cli_run import SPEC


def test_validate_and_schema(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = tuner("validate", tmp_path / "spec.yaml")
    assert result.returncode == 0 and "valid" in result.stdout and "searching lr, num_layers" in result.stdout
    bad = tuner("validate", tmp_path / "spec.yaml", "--set", "params.lr.low=-1")
    assert bad.returncode == 2 and "params.lr: log: a log-scaled range needs low > 0" in bad.stderr
    schema = json.loads(tuner("schema").stdout)
    assert "params" in schema["properties"]


def test_best_of_a_missing_experiment(tmp_path):
    result = tuner("best", "nope", "--storage", tmp_path)
    assert result.returncode == 2 and "not a tuner experiment" in result.stderr
