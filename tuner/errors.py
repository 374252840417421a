"""Errors that reach the user as one line and exit code 2 (bad input) or 1 (a run failed), and `one_line` to quote a
library's exception in one."""


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


class DivergedError(TunerError):
    """Training produced a non-finite loss; the run is over and must not be retried."""

    exit_code = 1


def one_line(exc: BaseException) -> str:
    """A library's exception as one line of a message (its own text can span lines, or be empty)."""
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__
