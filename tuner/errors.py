"""Every exception tuner raises for the user: one line, and exit code 2 (BadInput: nothing was run) or 1 (a run, a
report or a cluster operation failed); `one_line` quotes a library's exception in one line."""

import errno
import re


class TunerError(Exception):
    """Base class: the message is a complete one-line explanation for the user. A run that failed: exit code 1."""

    exit_code = 1


class BadInput(TunerError):
    """Base class of what the user gave that cannot be used as it is: exit code 2, and nothing was run."""

    exit_code = 2


class SpecError(BadInput):
    """A search-space / training YAML that is missing, unparsable or invalid: the message names the field."""


class UsageError(BadInput):
    """A command-line option or argument that is wrong: the message names the option."""


class ExperimentError(BadInput):
    """An experiment folder that cannot be used as asked: not an experiment, run by another process, started with
    another spec or data, moved, or holding state that cannot be trusted or read."""


class AuthenticationRefused(BadInput):
    """A cluster that refused the caller's credentials (its token)."""


class VersionMismatchError(BadInput):
    """A cluster whose packages cannot run what the submitting machine sent (another Ray)."""


class DataError(BadInput):
    """A dataset that is missing, unreadable, empty, or cannot be split or sampled."""


class ModelContractError(BadInput):
    """A model that cannot be found or imported, or does not keep the Recommender contract (its class, its
    hyperparameters' annotations and defaults, what forward() and auxiliary_loss() return)."""


class StorageError(BadInput):
    """A storage location (a folder or URI) that cannot be parsed or reached: an unknown scheme, a bucket that
    does not resolve."""


class StorageFault(TunerError):
    """A full disk, a quota or a read-only file system where the experiment is written: the run stopped with its
    state saved, and the same command resumes it once there is room."""


STORAGE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system"}


def storage_reason(exc: BaseException) -> str | None:
    """What a storage fault is called ("no space left on device", ...) when `exc` is one (an OSError with its
    errno, or a wrapped one whose text carries "[Errno 28]", as Ray's and pyarrow's do), else None."""
    code = getattr(exc, "errno", None)
    return STORAGE_ERRNOS[code] if code in STORAGE_ERRNOS else storage_reason_in_text(str(exc))


def storage_reason_in_text(text: str) -> str | None:
    """The same, read from an error's text (Ray's error.txt of a trial)."""
    match = _ERRNO_IN_TEXT.search(text)
    return STORAGE_ERRNOS[int(match.group(1))] if match else None


_ERRNO_IN_TEXT = re.compile(r"\[errno (%s)\]" % "|".join(str(code) for code in STORAGE_ERRNOS), re.IGNORECASE)


class ClusterError(TunerError):
    """The cluster could not be reached, refused us, or a job operation failed: not bad input (exit 1)."""


class NoResultsError(TunerError):
    """The experiment has no trial with metrics: its report says so and the command fails (exit 1)."""


class DivergedError(TunerError):
    """Training produced a non-finite loss; the run is over and must not be retried."""


def one_line(exc: BaseException) -> str:
    """A library's exception as one line of a message (its own text can span lines, or be empty)."""
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__
