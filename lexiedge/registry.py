"""A typed, named collection of plugin classes of one kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from lexiedge.api import Plugin
from lexiedge.errors import UnknownPluginError

P = TypeVar("P", bound=Plugin)


class Registry(Generic[P]):
    """Plugins of one kind by name. Hooks receive one and call :meth:`add`."""

    def __init__(self, kind: str, base: type[P]) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type[P]] = {}
        self._origin: dict[str, str] = {}

    def add(self, plugin_class: type[P]) -> type[P]:
        """Register a plugin class; usable as a decorator. Two plugins of one name are an error."""
        if not (isinstance(plugin_class, type) and issubclass(plugin_class, self.base)):
            raise TypeError(f"{plugin_class!r} is not a {self.base.__name__} subclass")
        name = getattr(plugin_class, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{plugin_class.__qualname__} has no `name` class attribute")
        origin = f"{plugin_class.__module__}.{plugin_class.__qualname__}"
        if name in self._classes and self._classes[name] is not plugin_class:
            raise ValueError(f"two {self.kind} plugins are named {name!r}: {self._origin[name]} and {origin}")
        self._classes[name] = plugin_class
        self._origin[name] = origin
        return plugin_class

    def get(self, name: str) -> P:
        """An instance of the plugin called ``name``; unknown names list the known ones."""
        try:
            return self._classes[name]()
        except KeyError:
            raise UnknownPluginError(self.kind, name, self._classes) from None

    def get_class(self, name: str) -> type[P]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, self._classes) from None

    def origin(self, name: str) -> str:
        return self._origin[name]

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)
