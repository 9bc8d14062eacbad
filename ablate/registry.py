"""One registry type for every extension point (torchvision ``_api.register_model`` style).

An extension point (attention kinds, backbones, datasets, launchers, stores, table formats,
plot kinds, Optuna samplers and pruners, sweep kinds) is one ``Registry``: ``register(name)``
adds an object (as a decorator or a call) and refuses a duplicate name; ``get(name)`` returns
it or raises ``ConfigError`` listing the allowed names; ``names()`` lists them.

``discover="package"`` makes the registry import every module of that package on first use,
so a new extension is one new file in that package (plus its conf YAML): no list elsewhere to
edit. ``discover`` may also name one module that registers a fixed set. Modules are imported, not their heavy dependencies: extension modules import optional
packages (submitit, ray, wandb) inside the functions that need them.
"""
from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from ablate.errors import ConfigError, allowed

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(RuntimeError):
    """A programming error in registration (a duplicate name), not bad user input."""


class Registry(Generic[T]):
    """Named objects of one kind.

    Args:
        what: what the names are, for messages (``"attention kind"``, ``"launcher"``).
        discover: a package whose modules register into this registry (or one module that does);
            imported on first use, so the registry's own module needs no import of them.
    """

    def __init__(self, what: str, discover: Optional[str] = None) -> None:
        self.what = what
        self._discover = discover
        self._loaded = discover is None
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, obj: Optional[T] = None, **meta: Any) -> Any:
        """Add ``obj`` under ``name`` (returns it), or return a decorator that does."""

        def add(o: T) -> T:
            if name in self._entries:
                raise RegistryError(f"{self.what} {name!r} is already registered; registered: {allowed(sorted(self._entries))}")
            self._entries[name] = o
            self._meta[name] = dict(meta)
            return o

        return add if obj is None else add(obj)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        target = importlib.import_module(self._discover)
        for info in pkgutil.iter_modules(getattr(target, "__path__", [])):  # a module has no __path__
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._discover}.{info.name}")

    def get(self, name: str) -> T:
        """The object registered as ``name``; ``ConfigError`` naming the allowed ones otherwise."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.what} {name!r}; allowed: {allowed(self.names())}") from None

    def meta(self, name: str) -> dict[str, Any]:
        """The keyword metadata given at registration (``register(name, positions=...)``)."""
        self.get(name)
        return self._meta[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching an fnmatch ``pattern``."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._entries.items()))

    def find(self, predicate: Callable[[T], bool]) -> Optional[str]:
        """The first name (sorted) whose object satisfies ``predicate``, or None."""
        return next((n for n, o in self.items() if predicate(o)), None)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._entries)} entries)"
