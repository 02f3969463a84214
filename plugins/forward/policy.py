"""Upstream selection policies: the order in which one query tries the upstreams.

Each policy returns a new list on every call (the caller walks it and may start over
from its beginning); the configured list itself is never reordered.
"""

from __future__ import annotations

import abc
import random as _random
from collections.abc import Sequence
from typing import ClassVar, TypeVar

T = TypeVar("T")


class Policy(abc.ABC):
    """Base class: ``order(items)`` gives the try order for one query."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def order(self, items: Sequence[T]) -> list[T]:
        """The upstreams in the order this query tries them."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Random(Policy):
    """A fresh random permutation per query (CoreDNS's default).

    With two upstreams this is a coin flip between the two orders, as in CoreDNS.
    """

    name = "random"

    def __init__(self, rng: _random.Random | None = None) -> None:
        self.rng = rng or _random.Random()

    def order(self, items: Sequence[T]) -> list[T]:
        n = len(items)
        if n == 1:
            return [items[0]]
        if n == 2:
            return [items[1], items[0]] if self.rng.getrandbits(1) else [items[0], items[1]]
        out = list(items)
        self.rng.shuffle(out)
        return out


class RoundRobin(Policy):
    """A counter picks the first upstream; the others follow in configured order.

    The counter is incremented *before* it is used, so the first query starts with
    the second upstream, exactly like CoreDNS (its ``TestList`` expects
    ``2, 1, 3`` for three upstreams on the first call).
    """

    name = "round_robin"

    def __init__(self) -> None:
        self.robin = 0

    def order(self, items: Sequence[T]) -> list[T]:
        # Only ever called on the engine's event loop, so a plain int is enough.
        self.robin = (self.robin + 1) & 0xFFFFFFFF
        i = self.robin % len(items)
        return [items[i], *items[:i], *items[i + 1 :]]


class Sequential(Policy):
    """Always the configured order (resolv.conf style: the first one unless it fails)."""

    name = "sequential"

    def order(self, items: Sequence[T]) -> list[T]:
        return list(items)


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (Random, RoundRobin, Sequential)}


def make_policy(name: str) -> Policy:
    """The policy called ``name`` (``KeyError`` when unknown)."""
    return POLICIES[name]()
