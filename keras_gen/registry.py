"""Name -> object registries: the single source of the choices offered by `--model` and `--dataset`."""

from keras_gen import errors


class Registry:
    """Maps names to objects; refuses duplicates and fails lookups with the list of valid names.

    Args:
        kind: what is registered ("model", "dataset"), used in error messages.
    """

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name, value=None):
        """Registers `value` under `name`; without `value`, returns a decorator."""
        if value is None:
            return lambda decorated: self.register(name, decorated)
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = value
        return value

    def lookup(self, name):
        if name not in self._entries:
            raise errors.UserError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}")
        return self._entries[name]

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries
