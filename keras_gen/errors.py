"""Errors a user can fix by changing a flag, a path or a file."""


class UserError(ValueError):
    """Bad input from the user: the CLI prints the message on one line and exits with status 2."""


def check_choice(flag, value, choices):
    """A UserError naming `--flag=value` and the accepted values unless `value` is one of `choices`."""
    if value not in choices:
        raise UserError(f"--{flag}={value}; expected one of {', '.join(map(str, choices))}")


class DataNotFoundError(UserError):
    """No source could provide the requested dataset."""


class TrainingError(RuntimeError):
    """Training had to stop (a non-finite loss, a damaged checkpoint): the CLI prints one line, exit status 1."""
