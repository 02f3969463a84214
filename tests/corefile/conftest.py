"""Fixtures for the Corefile-language tests.

The tests never depend on which plugins are installed: they parse with a private
registry whose only "supported" plugins are dummies named below. Any other name
in CoreDNS's plugin list has the status "coredns", anything else "unknown".
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pycorefile.corefile import Corefile, parse
from pycorefile.registry import Registry

HERE = Path(__file__).resolve().parent

#: Directive names the test registry supports: CoreDNS's parser tests use
#: dir1..dir3 and a few Caddy names; the rest are pycorefile/CoreDNS plugins.
SUPPORTED = (
    "dir1",
    "dir2",
    "dir3",
    "proxy",
    "gzip",
    "basicauth",
    "errors",
    "log",
    "whoami",
    "forward",
    "cache",
    "hosts",
    "template",
    "bind",
    "view",
    "prometheus",
    "reload",
)


class PrivateRegistry(Registry):
    """A registry that knows only what the test registers (no entry points)."""

    def load_entry_points(self) -> None:
        return None


def make_registry(*names: str) -> Registry:
    registry = PrivateRegistry()
    for name in names:
        registry.register(type(f"Dummy_{name}", (), {"name": name}), name)  # type: ignore[arg-type]
    return registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return make_registry(*SUPPORTED)


@pytest.fixture
def cparse(registry: Registry) -> Callable[..., Corefile]:
    """``parse`` with the test registry, an empty environment and a Corefile
    located in this directory (so ``testdata/...`` imports resolve)."""

    def run(text: str, filename: str | None = None, **kwargs: Any) -> Corefile:
        kwargs.setdefault("env", {})
        kwargs.setdefault("registry", registry)
        return parse(text, filename or str(HERE / "Corefile"), **kwargs)

    return run


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> None:
    """Every test here sees only the test registry (also as the default one) and
    no plugin option checks (a ``pycorefile.chain`` without ``check_plugins``);
    tests that want checks install their own stand-in."""
    import pycorefile.registry as registry_module

    monkeypatch.setattr(registry_module, "_default", registry)
    monkeypatch.setitem(sys.modules, "pycorefile.chain", types.ModuleType("pycorefile.chain"))
