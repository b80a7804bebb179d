"""Domain errors. The CLI turns each into a one-line message, a hint and an exit code."""

from __future__ import annotations


class LdfixError(Exception):
    """An error the user can act on. `exit_code` follows the contract (2 usage, 3 could not do the job)."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(LdfixError):
    exit_code = 2


class ImageAccessError(LdfixError):
    """The image (or daemon, archive, directory) could not be read."""

    exit_code = 3


class DaemonUnreachable(ImageAccessError):
    """No Docker daemon answered: a plain NAME:TAG is then read from its registry."""


class InputFileError(LdfixError):
    """A file given on the command line is missing, unreadable or not what it should be."""

    exit_code = 3


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM. A BaseException of our own so that click does not turn it into "Aborted!" and exit
    before the containers are cleaned up."""
