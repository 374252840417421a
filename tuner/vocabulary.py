"""The names every layer shares, and nothing heavy to import (reading a spec needs neither torch nor pandas):
metric keys, the record columns of hyperparameters, stop reasons, models and the experiment folder's file names.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any, Iterable, Literal, NamedTuple

METRICS = ("precision", "recall", "ndcg", "hit", "mrr", "map")  # per user, then averaged over a split's users
CATALOGUE_METRICS = ("coverage",)  # of the whole catalogue: the share of items in anyone's top K
SPLITS = ("train", "val", "test")

# ---- a spec's `model:`: a name registered under the entry-point group, or an import path module:Class ----------

MODEL_ENTRY_POINTS = "tuner.models"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_IDENTIFIERS = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_MODEL_IMPORT_PATH = re.compile(rf"^{_IDENTIFIERS}:{_IDENTIFIERS}$")


def is_import_path(model: str) -> bool:
    return ":" in model


def check_model_reference(model: str) -> str:
    """`model` is a registered name or `package.module:Class` (ValueError naming both forms otherwise)."""
    if not (_MODEL_IMPORT_PATH.match(model) if is_import_path(model) else _MODEL_NAME.match(model)):
        raise ValueError(f"{model!r} is neither a model name (`tuner models` lists them) nor an import path "
                         "package.module:Class")
    return model


# ---- metric keys: "<split>/<metric>@<k>" (e.g. val/recall@20) and "<split>/users" ---------------------------


class MetricKey(NamedTuple):
    split: str
    metric: str
    k: int

    def __str__(self) -> str:
        return metric_key(self.split, self.metric, self.k)


_METRIC_KEY = re.compile(r"^(?P<split>[a-z]+)/(?P<metric>[a-z]+)@(?P<k>[0-9]+)$")


def metric_key(split: str, metric: str, k: int) -> str:
    return f"{split}/{metric}@{k}"


def users_key(split: str) -> str:
    """How many users had ground truth in `split` (the users each of its means is over)."""
    return f"{split}/users"


def parse_metric_key(key: str) -> MetricKey:
    """"val/recall@20" -> MetricKey("val", "recall", 20); ValueError naming the expected form otherwise."""
    match = _METRIC_KEY.match(key)
    if not match or match["split"] not in SPLITS or match["metric"] not in METRICS + CATALOGUE_METRICS:
        raise ValueError(f"{key!r} is not a metric; expected <split>/<metric>@<k>, e.g. val/recall@20, with split "
                         f"{'|'.join(SPLITS)} and metric {'|'.join(METRICS + CATALOGUE_METRICS)}")
    return MetricKey(match["split"], match["metric"], int(match["k"]))


def better(value: float, than: float, mode: str) -> bool:
    """Whether `value` is strictly better than `than` for a metric optimised in `mode` ("max" or "min")."""
    return value > than if mode == "max" else value < than


class Objective(NamedTuple):
    """The metric a search optimises and which way (a spec's `metric` and `mode`): how two values compare, the worst
    possible value, and which users the metric is a mean over."""

    metric: str
    mode: str  # "max" | "min"

    def better(self, value: float, than: float) -> bool:
        return better(value, than, self.mode)

    def best(self, values):
        """The best of a pandas Series (or the per-group best of a grouped one)."""
        return values.max() if self.mode == "max" else values.min()

    def best_index(self, values):
        return values.idxmax() if self.mode == "max" else values.idxmin()

    @property
    def sign(self) -> float:
        """+1 or -1: sign * value is larger the better the value."""
        return 1.0 if self.mode == "max" else -1.0

    @property
    def worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """Optuna's name for the mode."""
        return "maximize" if self.mode == "max" else "minimize"

    @property
    def users(self) -> str:
        """The column counting the users the metric's split averages over (val/users for val/recall@20)."""
        return users_key(parse_metric_key(self.metric).split)


def metric_columns(ks: Iterable[int]) -> list[str]:
    """Every metric key an evaluation at `ks` gives, then each split's user count (the records' column order)."""
    names = METRICS + CATALOGUE_METRICS
    return [metric_key(split, metric, k) for split in SPLITS for k in sorted(ks) for metric in names] + [
        users_key(split) for split in SPLITS
    ]


# ---- record columns: the fixed ones every record row has, then metric keys, then param_<name> -------------------


class Column:
    """The names of the records' fixed columns, in the schema's order (the fields of experiment.records'
    TrialIdentity then EpochRecord; a test holds them equal), and of the columns the tables built from the records
    add. Code that reads a frame of records or trials names its columns through these."""

    EXPERIMENT = "experiment"
    TRIAL_ID = "trial_id"
    ATTEMPT = "attempt"
    MODEL = "model"
    DATASET = "dataset"
    SPLIT_HASH = "split_hash"
    SEED = "seed"
    DEVICE = "device"
    TRIAL_STARTED = "trial_started"  # unix time of the trial's first start (orders trials)
    EPOCH = "epoch"  # also the key of the epoch in a trial's reports to Tune, and the scheduler's time attribute
    STATUS = "status"  # RUNNING | ENDED
    STOP_REASON = "stop_reason"  # null while running, else a StopReason
    LOSS = "loss"
    BPR_LOSS = "bpr_loss"
    EPOCH_SECONDS = "epoch_seconds"
    SAMPLE_SECONDS = "sample_seconds"
    EVAL_SECONDS = "eval_seconds"
    CUMULATIVE_SECONDS = "cumulative_seconds"
    EVALUATED = "evaluated"
    # the trial table's own (experiment.trials): one row per trial
    EPOCHS_RUN = "epochs_run"
    BEST_EPOCH = "best_epoch"
    TOTAL_SECONDS = "total_seconds"
    # per_user/ files: one row per test user of a trial's best-validation epoch
    USER = "user"
    # baselines.parquet: one row per baseline (most popular; MF of rank 8 per seed), with seed, epoch and metrics
    BASELINE = "baseline"
    # an ablation's trials (analysis.summarize): the factor's value, as the tables and plots label it
    FACTOR_VALUE = "value"


RECORD_COLUMNS = (
    Column.EXPERIMENT, Column.TRIAL_ID, Column.ATTEMPT, Column.MODEL, Column.DATASET, Column.SPLIT_HASH, Column.SEED,
    Column.DEVICE, Column.TRIAL_STARTED, Column.EPOCH, Column.STATUS, Column.STOP_REASON, Column.LOSS, Column.BPR_LOSS,
    Column.EPOCH_SECONDS, Column.SAMPLE_SECONDS, Column.EVAL_SECONDS, Column.CUMULATIVE_SECONDS, Column.EVALUATED,
)  # the fixed columns, in order; the metric columns (`metric_columns`) and param_<name> columns follow

# ---- hyperparameters as record columns: param_<name>, a list (K) as text "10,20" --------------------------------

PARAM_PREFIX = "param_"


def param_column(name: str) -> str:
    return PARAM_PREFIX + name


def encode_param(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value


def decode_param(name: str, value: Any) -> Any:
    """The value a record column holds, as the hyperparameter it was: K back to a list of ints, a null (None or
    NaN, as a float column stores it) to None, numpy scalars to Python ones."""
    if name == "k":
        return [int(k) for k in str(value).split(",")]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


# ---- how a trial ended -------------------------------------------------------------------------------------------


class StopReason(str, Enum):
    """Why a trial's records end (the `stop_reason` column of its last epoch)."""

    FINISHED = "finished"  # trained every epoch
    EARLY_STOPPED = "early_stopped"  # the scheduler (ASHA) stopped it
    FAILED = "failed"  # it raised, and its retries are spent
    DIVERGED = "diverged"  # its loss became non-finite: failed on purpose, never retried
    COLLAPSED = "collapsed"  # its BPR loss sat at ln 2 (a model that scores every item alike): ended, with its metrics

    def __str__(self) -> str:
        return self.value


SUBMITTED_WITH_ENV = "TUNER_SUBMITTED_WITH"  # a submitted job's variable: the submitting machine's package versions
RUNNING = "running"  # not a stop reason: a record's status, and what trial tables say of a trial that has not ended
ENDED = "ended"  # the status of a trial's last record once it has ended
PRODUCED_METRICS = (StopReason.FINISHED.value, StopReason.EARLY_STOPPED.value, StopReason.COLLAPSED.value)  # tables show
# the key of a trial's last report to Tune when the trial ended itself (diverged, collapsed, or failed the same way
# twice): its value is that stop reason, and Ray sees the trial end normally (it is not retried)
TRIAL_STATES = (*(reason.value for reason in StopReason), RUNNING)  # the order counts are shown in
ENDED_ITSELF = "ended_itself"


def how_it_ended(last_result: dict | None, epochs: float, errored: bool = False) -> StopReason:
    """How a trial that Ray has ended ended, from its last report to Tune: the one rule the records' callback, the
    progress lines and the live search apply. The trainable reports what it decided itself under ENDED_ITSELF (and
    writes finished, diverged and collapsed into its records); a trial that reached its last epoch finished; one
    Ray ended before that was stopped by the scheduler; one that raised for good failed."""
    if errored:
        return StopReason.FAILED
    result = last_result or {}
    if result.get(ENDED_ITSELF):
        return StopReason(result[ENDED_ITSELF])
    return StopReason.FINISHED if result.get("epoch", 0) >= epochs else StopReason.EARLY_STOPPED


# ---- the experiment folder: <storage>/<name>/ ----------------------------------------------------------------

SPEC_FILE = "tuner-spec.json"  # the spec it was started with
PROVENANCE_FILE = "provenance.json"  # command, code, packages, resources of every (re)start
RECORDS_DIR = "records"  # records/<id>/epoch=<n>.parquet, compacted into trial.parquet when it ends
COMPACTED_FILE = "trial.parquet"
PER_USER_DIR = "per_user"  # per_user/trial_id=<id>.parquet: test metrics per user at the best-validation epoch
MANIFESTS_DIR = "manifests"  # manifests/trial_id=<id>.attempt=<n>.json: what each trial start ran
BASELINES_FILE = "baselines.parquet"
IDS_DIR = "ids"  # ids/users.parquet, ids/items.parquet: tuner's contiguous ids -> the dataset's own ids
STUDY_FILE = "optuna.db"  # the Optuna study rebuilt from the records
RESTARTED_DIR = "restarted"  # the first attempts of trials that --restart-errored ran again
LOST_DIR = "lost"  # trials a killed driver had started after Ray's last snapshot: the rerun ran others instead
DAMAGED_DIR = "damaged"  # damaged/<time>/: Ray's saved state of a run that could not be read, set aside by the rerun
REPORT_DIR = "report"
ERROR_FILE = "error.txt"  # Ray's <trial id>/error.txt: why a trial failed
CHECKPOINT_FILE = "trainer.pt"  # inside Ray's checkpoint folders


def trial_folder(trial_id: str) -> str:
    """The name a trial's files and folders have beside other trials' (per_user/, manifests/, lost/, restarted/)."""
    return f"trial_id={trial_id}"


def record_folder(trial_id: str) -> str:
    """A trial's folder under records/: its bare id. A `key=value` folder name would make pandas, pyarrow and DuckDB
    add a second trial_id column (hive partitioning) to the one every record holds; experiments begun before
    December 2026 have records/trial_id=<id>/ (`trial_folder`), and are read and resumed as they are."""
    return trial_id


def epoch_file(epoch: int) -> str:
    return f"epoch={epoch}.parquet"


def is_record_file(name: str) -> bool:
    return name == COMPACTED_FILE or (name.startswith("epoch=") and name.endswith(".parquet"))
