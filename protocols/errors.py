"""The one error type a person can act on.

Every package raises a subclass of `SmpError` for problems caused by input, files, ports or
machines; its message is one line that names the thing at fault and what is allowed. The
command line prints it without a traceback. Anything else is a bug and keeps its traceback.
"""


class SmpError(Exception):
    """An error a user can act on; `str()` is one line."""

    exit_code = 1  # what the command line exits with


class UsageError(SmpError):
    """A command given something it does not accept (an unknown name, a bad value)."""

    exit_code = 2
