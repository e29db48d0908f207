"""Errors a user can fix by changing a flag, a path or a file."""


class UserError(ValueError):
    """Bad input from the user: the CLI prints the message on one line and exits with status 2."""


class DataNotFoundError(UserError):
    """No source could provide the requested dataset."""


class TrainingError(RuntimeError):
    """Training had to stop (a non-finite loss, a damaged checkpoint): the CLI prints one line, exit status 1."""
