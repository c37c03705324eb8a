"""One reversible method patch, shared by the model patch and the batch patch.

google-genai is patched in two places (``Models``/``AsyncModels`` for calls,
``Batches``/``AsyncBatches`` for Batch API jobs) in the same two ways: on the classes, for
every client, or on one client's module instances. Installing, removing and telling which
wrappers are ours is written once here, so that both patches undo exactly what they did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import MethodType
from typing import Any

from gemini_slo.instrumentation._call import Scope

MARK = "__gemini_slo_original__"
"""The attribute a wrapper carries (the function it wraps): how ours are told from others'."""

Wrap = Callable[[type, str, Callable[..., Any], Scope], Callable[..., Any]]
"""``wrap(cls, name, original, scope)``: the wrapper of one SDK method."""


class MethodPatch:
    """Methods ``names`` of ``classes``, patched with ``wrap``; reversible, thread-safe."""

    def __init__(self, classes: tuple[type, ...], names: tuple[str, ...], wrap: Wrap) -> None:
        self.classes = classes
        self.names = names
        self.wrap = wrap
        self._lock = threading.Lock()
        self._class_originals: dict[tuple[type, str], Any] = {}

    def install(self, modules: Iterable[Any] | None, scope: Scope) -> None:
        """Patch the classes (``modules`` None) or those module instances of one client."""
        with self._lock:
            if modules is None:
                for cls in self.classes:
                    for name in self.names:
                        if (cls, name) in self._class_originals:
                            continue
                        original = cls.__dict__[name]
                        self._class_originals[(cls, name)] = original
                        setattr(cls, name, self.wrap(cls, name, original, scope))
                return
            for module in modules:
                cls = type(module)
                for name in self.names:
                    if name in vars(module):  # already instrumented
                        continue
                    # The SDK's own function, even when the classes are patched too: one wrapper.
                    original = self._class_originals.get((cls, name)) or getattr(cls, name)
                    wrapper = self.wrap(cls, name, original, scope)
                    setattr(module, name, MethodType(wrapper, module))

    def remove(self, modules: Iterable[Any] | None) -> None:
        """Undo :meth:`install` for the classes (``modules`` None) or those instances."""
        with self._lock:
            if modules is None:
                for (cls, name), original in list(self._class_originals.items()):
                    setattr(cls, name, original)
                    del self._class_originals[(cls, name)]
                return
            for module in modules:
                for name in self.names:
                    bound = vars(module).get(name)
                    if bound is not None and hasattr(getattr(bound, "__func__", None), MARK):
                        delattr(module, name)

    @property
    def classes_patched(self) -> bool:
        """Whether the classes are patched."""
        return bool(self._class_originals)
