"""The error contract: bad input is a ``ConfigError``, everything else is a bug.

``ConfigError`` (a ``ValueError``) carries one line that names the bad value and the allowed
ones; ``ablate``'s CLI prints it as ``ablate: error: ...`` and exits 2 before any compute. Any
other exception, a ``ValueError`` from inside numpy or pandas included, is not the user's
input: the CLI lets it through with its traceback. ``check_choice`` is the one helper for the
most common check.
"""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["ConfigError", "allowed", "check_choice"]


class ConfigError(ValueError):
    """Bad input (a config value, a command-line argument, a file): one line, value and allowed ones."""


def allowed(names: Iterable[Any]) -> str:
    """``"a, b, c"``: the allowed values as an error message lists them."""
    return ", ".join(str(n) for n in names)


def check_choice(what: str, value: Any, choices: Iterable[Any], owner: str = "") -> Any:
    """Return ``value`` if it is one of ``choices``; else ``ConfigError``:
    ``[<owner>: ]unknown <what> 'x'; allowed: ...`` (``owner`` names the dataset, table, ...)."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a dict's keys
        ok = False
    if not ok:
        raise ConfigError(f"{owner + ': ' if owner else ''}unknown {what} {value!r}; allowed: {allowed(choices)}")
    return value
