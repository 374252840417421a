"""`tuner submit` / `tuner jobs` against a real Ray cluster on loopback: a head and a worker node (each its own
raylet, from ray.cluster_utils.Cluster), token authentication on, torn down afterwards."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import epochs_written, kill_tree
from tuner.errors import AuthenticationRefused, ClusterError, UsageError, VersionMismatchError
from tuner.experiment import records
from tuner.tuning.ray_jobs import check_address, entrypoint

SPEC = """\
name: on-cluster
model: lightgcn
dataset:
  name: synthetic
  synthetic: {{num_users: {users}, num_items: 40, interactions_per_user: 10}}
metric: val/recall@10
fixed: {{embedding_dim: 8, num_layers: 1, batch_size: {batch}, epochs: {epochs}, eval_every: 1, k: [10]}}
params:
  lr: {{type: float, low: 1e-3, high: 1e-1, log: true}}
search: {{sampler: random, num_samples: {trials}, max_concurrent: 3}}
scheduler: {{kind: none}}
failure: {{max_failures: 3, checkpoint_every: 2}}
"""


def test_plain_http_to_a_remote_host_needs_token_auth(monkeypatch, capsys):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(UsageError, match="plain http to a non-loopback host"):
        check_address("http://203.0.113.5:8265")
    check_address("http://127.0.0.1:8265")
    check_address("http://localhost:8265")
    check_address("https://203.0.113.5:8265")
    assert capsys.readouterr().err == ""
    check_address("http://203.0.113.5:8265", allow_insecure=True)
    assert "warning: --allow-insecure: talking to http://203.0.113.5:8265 over plain http" in capsys.readouterr().err
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "x" * 32)
    check_address("http://203.0.113.5:8265")


def test_entrypoint_arguments_are_shell_quoted():
    command = entrypoint("/shared/runs; rm -rf ~", ["name=x $(id)"], [])
    assert command == "python -m tuner run spec.yaml --storage '/shared/runs; rm -rf ~' --set 'name=x $(id)'"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(*args, env):
    """A Ray node as `ray start ... --block` in its own process group (killing the group kills the node)."""
    return subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--block", "--disable-usage-stats",
                             "--node-ip-address=127.0.0.1", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    token_file = folder / "auth_token"
    token_file.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
    env = _env(token_file)
    gcs_port, dashboard_port = _free_port(), _free_port()
    # each node its own (short: it holds unix sockets) temp dir, as on separate machines: a node's clean-up of
    # its runtime-env files must not delete the other node's
    temp_dirs = [tempfile.mkdtemp(prefix="rayh", dir="/tmp"), tempfile.mkdtemp(prefix="rayw", dir="/tmp")]
    # every port of its own: another Ray on this machine (a test's local instance) holds the default ones, and a
    # head whose job agent cannot bind 52365 answers every submission "No available agent"
    head = _ray_start("--head", f"--port={gcs_port}", "--num-cpus=1", "--include-dashboard=true",
                      "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", f"--temp-dir={temp_dirs[0]}",
                      f"--dashboard-agent-listen-port={_free_port()}", env=env)
    address = f"http://127.0.0.1:{dashboard_port}"
    deadline = time.time() + 90
    while _tuner("jobs", "list", "--address", address, env=env).returncode != 0:  # the Jobs API is up
        assert time.time() < deadline, "the head node did not come up"
        time.sleep(1)
    worker = _ray_start(f"--address=127.0.0.1:{gcs_port}", "--num-cpus=2",
                        f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp_dirs[1]}", env=env)
    nodes = {"address": address, "token_file": token_file, "worker": worker, "folder": folder}
    yield nodes
    kill_tree(nodes["worker"])
    kill_tree(head)
    for folder in temp_dirs:
        shutil.rmtree(folder, ignore_errors=True)
    current = Path("/tmp/ray/ray_current_cluster")  # `ray start --head` leaves the address of the dead head here
    if current.is_file() and current.read_text().strip().endswith(f":{gcs_port}"):
        current.unlink()


def _env(token_file, **extra):
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file), "TUNER_OFFLINE": "1"}
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_ADDRESS", None)
    env.update(extra)
    return env


def _tuner(*args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "tuner", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _spec(folder, name, trials=3, epochs=3, batch=128, users=60):
    path = folder / f"{name}.yaml"
    text = SPEC.format(trials=trials, epochs=epochs, batch=batch, users=users)
    path.write_text(text.replace("name: on-cluster", f"name: {name}"))
    return path


@pytest.mark.slow
def test_submit_wait_then_report(cluster):
    folder, env = cluster["folder"], _env(cluster["token_file"])
    storage = folder / "runs"
    result = _tuner("submit", _spec(folder, "smoke"), "--address", cluster["address"], "--storage", storage,
                    "--submission-id", "smoke-1", "--wait", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == "smoke-1"
    assert "trials: 3 of 3 — 3 finished" in result.stdout
    assert cluster["token_file"].read_text() not in result.stdout + result.stderr
    frame = records.load(str(storage / "smoke"))
    assert len(frame) == 9 and not frame.duplicated(["trial_id", "epoch"]).any()
    report = _tuner("report", "smoke", "--storage", storage, env=env)
    assert report.returncode == 0, report.stderr
    listed = _tuner("jobs", "list", "--address", cluster["address"], env=env)
    assert "smoke-1\tSUCCEEDED\tsmoke" in listed.stdout

    reused = _tuner("submit", _spec(folder, "smoke"), "--address", cluster["address"], "--storage", storage,
                    "--submission-id", "smoke-1", env=env)
    assert reused.returncode == 2 and "'smoke-1' was already used" in reused.stderr


CLUSTER_MODEL = """\
from tuner import Recommender


class Doubled(Recommender):
    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 8, factor: float = 2.0):
        super().__init__(num_users, num_items, embedding_dim)
        self.factor = factor

    def forward(self):
        return self.user_embedding.weight * self.factor, self.item_embedding.weight
"""


@pytest.mark.slow
def test_submit_ships_a_model_from_a_local_file_and_the_worker_node_trains_it(cluster):
    folder, env = cluster["folder"], _env(cluster["token_file"])
    research = folder / "research"  # the model file lives only here, beside the spec, on the submitting machine
    research.mkdir()
    (research / "cluster_model.py").write_text(CLUSTER_MODEL)
    # trials long enough (seconds, not the one second a worker takes to start) that three run at once: the head has
    # one CPU, so the worker takes some
    spec = _spec(research, "own-model", epochs=60, batch=16, users=200).rename(research / "spec.yaml")
    spec.write_text(spec.read_text().replace("model: lightgcn", "model: cluster_model:Doubled")
                    .replace("num_layers: 1, ", "").replace("lr: {", "factor: {type: float, low: 0.5, high: 4}\n  lr: {"))
    storage = folder / "runs"
    worker = _worker_node_id(cluster)  # the worker has joined: the run plans for its CPUs too
    submitted = _tuner("submit", spec, "--address", cluster["address"], "--storage", storage, env=env)
    assert submitted.returncode == 0, submitted.stderr
    (research / "cluster_model.py").unlink()  # the job has its own copy: nothing reads this path any more
    job_id = submitted.stdout.strip()
    logs = _tuner("jobs", "logs", job_id, "--follow", "--address", cluster["address"], env=env).stdout
    assert "trials: 3 of 3 — 3 finished" in logs, logs[-4000:]
    frame = records.load(str(storage / "own-model"))
    assert len(frame) == 3 * 60 and frame["param_factor"].between(0.5, 4).all()
    manifests = [json.loads(p.read_text()) for p in (storage / "own-model" / "manifests").iterdir()]
    trained_on = {m["node"] for m in manifests}
    assert worker in trained_on, (trained_on, logs[-3000:])  # the node that never saw the file trained it
    assert all(m["model"]["file"].endswith("cluster_model.py") and str(research) not in m["model"]["file"]
               for m in manifests)  # each worker imported the job's copy


def _worker_node_id(cluster) -> str:
    """The id of the cluster's worker node, from the dashboard's state API, once it has joined."""
    import urllib.request

    request = urllib.request.Request(f"{cluster['address']}/api/v0/nodes?detail=1", headers={
        "Authorization": f"Bearer {cluster['token_file'].read_text().strip()}"})
    deadline = time.time() + 90
    while True:
        with urllib.request.urlopen(request, timeout=30) as response:
            nodes = json.loads(response.read())["data"]["result"]["result"]
        workers = [n["node_id"] for n in nodes if not n["is_head_node"] and n["state"] == "ALIVE"]
        if workers or time.time() > deadline:
            assert len(workers) == 1, nodes
            return workers[0]
        time.sleep(1)


@pytest.mark.slow
def test_worker_node_killed_mid_run_trials_resume_elsewhere(cluster):
    folder, env = cluster["folder"], _env(cluster["token_file"])
    storage = folder / "runs"
    epochs = 60
    spec = _spec(folder, "faults", trials=3, epochs=epochs, batch=16, users=200)
    submitted = _tuner("submit", spec, "--address", cluster["address"], "--storage", storage, env=env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    again = _tuner("submit", spec, "--address", cluster["address"], "--storage", storage, env=env)
    assert again.returncode == 2 and f"job {job_id} on {cluster['address']} is running this experiment" in again.stderr
    record_dir = storage / "faults" / "records"
    deadline = time.time() + 300
    # two trials are mid-run, each past its epoch-2 checkpoint: the head has one CPU, so at least one of them runs on
    # the worker (Ray does not always start the third trial before one of the first two ends)
    while time.time() < deadline:
        per_trial = list(epochs_written(record_dir).values())
        if sum(3 <= done < epochs for done in per_trial) >= 2:
            break
        time.sleep(0.1)
    kill_tree(cluster["worker"])  # the worker node (its raylet and its trials) dies mid-run
    assert sum(3 <= done < epochs for done in per_trial) >= 2, per_trial

    # follow the job's log until it ends (one command, instead of polling its status)
    logs = _tuner("jobs", "logs", job_id, "--follow", "--address", cluster["address"], env=env).stdout
    status = _tuner("jobs", "status", job_id, "--address", cluster["address"], env=env).stdout.strip()
    assert status == "SUCCEEDED", logs[-4000:]
    frame = records.load(str(storage / "faults"))
    assert len(frame) == 3 * epochs and not frame.duplicated(["trial_id", "epoch"]).any()
    assert frame.groupby("trial_id")["epoch"].apply(lambda e: sorted(e) == list(range(1, epochs + 1))).all()
    assert (frame["attempt"] > 1).any()  # the trials of the dead node were resumed from their checkpoints
    assert set(frame.groupby("trial_id").tail(1)["stop_reason"]) == {"finished"}


@pytest.mark.slow
def test_wrong_token_is_a_one_line_authentication_error(cluster, tmp_path):
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    result = _tuner("jobs", "list", "--address", cluster["address"], env=_env(wrong))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "auth" in lines[0].lower(), result.stderr
    assert "0" * 64 not in result.stderr


def test_an_unreachable_cluster_is_one_line_and_not_bad_input():
    env = {**os.environ, "TUNER_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    result = _tuner("jobs", "list", "--address", f"http://127.0.0.1:{_free_port()}", env=env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert result.stderr.endswith(
        "Is the cluster up and its dashboard forwarded here (`ray dashboard cluster.yaml`), or is it at another --address?\n")


def test_only_an_authentication_error_counts_as_bad_input(monkeypatch):
    """Classified by the exception Ray raises, not by its text: port 54039 holds "403" and is still unreachable."""
    import ray.job_submission
    from ray.exceptions import AuthenticationError

    from tuner.tuning import ray_jobs

    def refuse(error):
        def construct(address):
            raise error
        return construct

    address = "http://127.0.0.1:54039"
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", refuse(ConnectionError(f"Failed to connect to {address}")))
    with pytest.raises(ClusterError):
        ray_jobs.client(address)
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", refuse(AuthenticationError("Authentication failed")))
    with pytest.raises(AuthenticationRefused, match="Authentication failed"):
        ray_jobs.client(address)


class _JobsWhoseAgentComesUpLate:
    """A Jobs API that answers "try again later" to the first `refusals` submissions, as a just-started cluster does."""

    def __init__(self, refusals):
        self.refusals, self.submissions = refusals, 0

    def list_jobs(self):
        return []

    def submit_job(self, **kwargs):
        self.submissions += 1
        if self.submissions <= self.refusals:
            raise RuntimeError("Request failed with status code 500: No available agent to submit job, please try "
                               "again later.")
        return "raysubmit_1"


def test_submit_waits_for_a_cluster_whose_job_agent_is_not_up_yet(tmp_path, monkeypatch):
    from tuner.tuning import ray_jobs

    jobs = _JobsWhoseAgentComesUpLate(refusals=2)
    monkeypatch.setattr(ray_jobs, "client", lambda address, allow_insecure=False: jobs)
    monkeypatch.setattr(ray_jobs, "AGENT_RETRY_S", 0.0)
    assert ray_jobs.submit(_spec(tmp_path, "late")) == "raysubmit_1" and jobs.submissions == 3

    never = _JobsWhoseAgentComesUpLate(refusals=10**6)  # an agent that never comes: one line, exit 1, not bad input
    monkeypatch.setattr(ray_jobs, "client", lambda address, allow_insecure=False: never)
    monkeypatch.setattr(ray_jobs, "AGENT_WAIT_S", 0.0)
    with pytest.raises(ClusterError, match="submitting the job failed: .*try again later"):
        ray_jobs.submit(_spec(tmp_path, "never"))


def test_submit_takes_runs_options(tmp_path):
    from tuner.cli.common import run_overrides

    spec = _spec(tmp_path, "opts")
    assert run_overrides(spec, "other", None, 5, 2, False, ["fixed.lr=0.1"]) == [
        "name=other", "search.num_samples=5", "search.max_concurrent=2", "fixed.lr=0.1"]
    smoke = run_overrides(spec, None, None, None, None, True, [])
    assert "fixed.epochs=2" in smoke and smoke[-1] == "name=opts-smoke"


@pytest.mark.parametrize("command", [["jobs", "status"], ["jobs", "logs"], ["jobs", "stop"]])
def test_a_job_id_that_would_reach_another_endpoint_is_refused_before_any_request(command):
    """The id goes into the Jobs API's URL: '../' would reach another endpoint (no cluster listens at this address:
    the refusal comes first)."""
    from tests.cli import tuner

    result = tuner(*command, "../../api/version", "--address", f"http://127.0.0.1:{_free_port()}")
    assert result.returncode == 2 and result.stderr == (
        "error: job: '../../api/version' is not a job id; expected letters, digits, '.', '_' and '-' (`tuner jobs "
        "list` shows the cluster's jobs)\n")


def test_a_submission_id_is_checked_the_same_way(tmp_path):
    from tests.cli import tuner

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: exp\nmodel: mf\n")
    result = tuner("submit", spec, "--submission-id", "a/b", "--address", f"http://127.0.0.1:{_free_port()}")
    assert result.returncode == 2 and result.stderr.startswith("error: --submission-id: 'a/b' is not a job id")


@pytest.mark.slow
@pytest.mark.integration
def test_submit_gives_the_job_a_data_folder_and_environment_variables(cluster, shared_data):
    """The job looked for ML-100K in its node's ~/.cache and failed; `--data-dir` names the folder on the nodes, the
    failure says which node looked where, and `--env` reaches the job."""
    folder, env = cluster["folder"], _env(cluster["token_file"])
    spec = folder / "ml100k.yaml"
    spec.write_text("name: ml100k-job\nmodel: mf\ndataset: {name: movielens-100k}\nmetric: val/recall@10\n"
                    "fixed: {embedding_dim: 8, epochs: 1, k: [10]}\nscheduler: {kind: none}\n"
                    "params: {lr: {type: categorical, choices: [0.01]}}\nsearch: {sampler: grid}\n")
    common = ["--address", cluster["address"], "--storage", folder / "runs", "--wait"]
    missing = _tuner("submit", spec, *common, "--submission-id", "no-data", env=env)
    assert missing.returncode == 2, missing.stdout[-3000:]
    assert f"error: on node {socket.gethostname()} (the job's driver): " in missing.stdout
    assert "`tuner submit --data-dir` names a folder there" in missing.stdout

    given = _tuner("submit", spec, *common, "--submission-id", "with-data", "--data-dir", shared_data,
                   "--env", "TUNER_PROBE=42", env=env)
    assert given.returncode == 0, given.stdout[-3000:] + given.stderr[-2000:]
    assert "trials: 1 of 1 — 1 finished" in given.stdout
    assert "INFO" not in given.stderr, given.stderr  # the Jobs client's own lines about uploading and log streaming
    asked = ("import json; from ray.job_submission import JobSubmissionClient; "
             f"info = JobSubmissionClient({cluster['address']!r}).get_job_info('with-data'); "
             "print(json.dumps({'env': info.runtime_env['env_vars'], 'entrypoint': info.entrypoint}))")
    info = json.loads(subprocess.run([sys.executable, "-c", asked], capture_output=True, text=True, env=env,
                                     check=True).stdout.splitlines()[-1])
    assert info["env"]["TUNER_PROBE"] == "42" and "--data-dir" in info["entrypoint"]


def test_submits_options_are_checked_before_anything_is_sent(tmp_path):
    from tests.cli import tuner

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: exp\nmodel: mf\n")
    address = ["--address", f"http://127.0.0.1:{_free_port()}"]
    bad_env = tuner("submit", spec, "--env", "no-equals", *address)
    assert bad_env.returncode == 2 and bad_env.stderr.startswith("error: --env: expected KEY=VALUE")
    runtime = tmp_path / "runtime.yaml"
    runtime.write_text("working_dir: /elsewhere\n")
    own_dir = tuner("submit", spec, "--runtime-env", runtime, *address)
    assert own_dir.returncode == 2 and "working_dir is tuner's own" in own_dir.stderr


def test_a_job_on_a_cluster_with_another_ray_is_refused_in_one_line_and_other_packages_are_noted():
    """cluster.yaml used to install without constraints.txt: nodes could resolve other Ray and torch versions than
    the client. The job compares its node's versions with the submitter's, which submit passes it."""
    import json

    from tuner.tuning.package_versions import check_submitter_versions, package_versions
    from tuner.tuning.ray_jobs import job_runtime_env

    ours = package_versions()
    passed = json.loads(job_runtime_env({}, {})["env_vars"]["TUNER_SUBMITTED_WITH"])
    assert passed == ours and {"ray", "torch", "optuna"} <= set(ours)
    assert check_submitter_versions(json.dumps(ours)) is None
    assert check_submitter_versions(json.dumps({**ours, "torch": "1.0.0"})) == (
        f"note: this node's packages differ from the submitting machine's: torch {ours['torch']} here, 1.0.0 there")
    with pytest.raises(VersionMismatchError, match=rf"^this cluster runs Ray {ours['ray']}, the machine that submitted the job "
                                        r"Ray 1\.2\.3: install the same versions on both"):
        check_submitter_versions(json.dumps({**ours, "ray": "1.2.3"}))
