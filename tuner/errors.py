"""Errors that reach the user as one line and exit code 2 (bad input) or 1 (a run failed), and `one_line` to quote a
library's exception in one."""

import errno
import re


class TunerError(Exception):
    """Base class: the message is a complete one-line explanation for the user."""

    exit_code = 2


class SpecError(TunerError):
    """A search-space / training YAML that is missing, unparsable or invalid."""


class DataError(TunerError):
    """A dataset that is missing, unreadable, empty, or cannot be split or sampled."""


class ModelContractError(TunerError):
    """A model that cannot be found or imported, or does not keep the Recommender contract (its class, its
    hyperparameters' annotations and defaults, what forward() and auxiliary_loss() return)."""


class StorageError(TunerError):
    """A storage location (a folder or URI) that cannot be parsed or reached: an unknown scheme, a bucket that
    does not resolve."""


class StorageFault(TunerError):
    """A full disk, a quota or a read-only file system where the experiment is written: the run stopped with its
    state saved, and the same command resumes it once there is room."""

    exit_code = 1


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

    exit_code = 1


class NoResultsError(TunerError):
    """The experiment has no trial with metrics: its report says so and the command fails (exit 1)."""

    exit_code = 1


class DivergedError(TunerError):
    """Training produced a non-finite loss; the run is over and must not be retried."""

    exit_code = 1


def one_line(exc: BaseException) -> str:
    """A library's exception as one line of a message (its own text can span lines, or be empty)."""
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__
