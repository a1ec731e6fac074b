"""Exception types raised by retrofit. Each message names the field, the value found and the fix."""


class RetrofitError(Exception):
    """Base class of every error retrofit raises on purpose."""


class DataError(RetrofitError, ValueError):
    """A dataset, split or feedback file is malformed (shapes, NaN/inf, bounds, episode ends)."""


class PolicyError(RetrofitError, TypeError):
    """A policy cannot be wrapped or used (not differentiable, wrong spaces, unsupported type)."""


class ConfigError(RetrofitError, ValueError):
    """A hyper-parameter or option is out of its valid range."""


class EnvironmentError_(RetrofitError, RuntimeError):
    """A task id is unknown or its simulator cannot be created here."""


class TrainingError(RetrofitError, RuntimeError):
    """Training cannot go on: a loss or parameter turned non-finite, or a run was interrupted."""


class CheckpointError(TrainingError):
    """A checkpoint cannot be trusted: unreadable, or its bytes differ from the digest recorded
    when it was saved (the message names the file and the previous checkpoint, if intact)."""


class DiskFullError(RetrofitError, OSError):
    """A file could not be written for lack of space (``errno`` ENOSPC): the message names the
    file, the bytes it needs (or had written when the disk filled) and the bytes free."""


class LikelihoodWarning(UserWarning):
    """The policy's likelihood is a poor model of the data (e.g. tanh-squashed densities of
    actions that lie on the box bounds): training runs, but read the message."""
