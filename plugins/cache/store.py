"""A bounded map of cached replies with a lookup as cheap as ``dict.get``.

A hit must cost what a dict lookup costs (PERFORMANCE.md item 6: ``dict.get`` is
about 0.06 µs, ``cachetools.TTLCache.get`` 1.2 µs). So :class:`Store` keeps two
structures:

* ``index``, a plain dict from key to :class:`~.item.Entry`, which is all a hit
  reads;
* ``order``, a :class:`cachetools.LRUCache` holding the same entries in insertion
  order, which enforces the capacity and picks what to evict. It is touched only
  when something is stored or removed (misses and refreshes).

Eviction is "second chance" (CLOCK), an approximation of LRU that costs a hit one
attribute store: a hit sets ``entry.used``; when the store is full, the oldest
entry is evicted unless its bit is set, in which case the bit is cleared and the
entry moves to the young end. At most :data:`SECOND_CHANCES` entries are spared per
eviction, so one insert never does unbounded work.

CoreDNS instead evicts an arbitrary entry of one of 256 shards (Go map order). The
capacity is the same as CoreDNS's effective one (256 × max(CAPACITY // 256, 4)),
but without shards it is reached exactly, not unevenly.
"""

from __future__ import annotations

from typing import Any

import cachetools

from .item import Entry

SECOND_CHANCES = 16


class _Order(cachetools.LRUCache):  # type: ignore[type-arg]
    """Insertion order and capacity; evictions are mirrored into the index."""

    def __init__(self, maxsize: int, store: Store) -> None:
        super().__init__(maxsize)
        self._store = store

    def popitem(self) -> tuple[Any, Any]:
        for _ in range(SECOND_CHANCES):
            key, entry = super().popitem()
            if not entry.used:
                break
            entry.used = False
            # One slot is free now, so this re-insert cannot evict anything.
            super().__setitem__(key, entry)
        else:
            key, entry = super().popitem()
        store = self._store
        if store.index.get(key) is entry:
            del store.index[key]
        store.evictions += 1
        return key, entry


class Store:
    """One cache type (success or denial): ``index`` for lookups, bounded by
    ``capacity`` entries. Not thread-safe for writers: the plugin serialises
    :meth:`add` and :meth:`remove`; readers only use ``index.get``."""

    __slots__ = ("index", "order", "capacity", "evictions", "kind")

    def __init__(self, capacity: int, kind: str) -> None:
        self.index: dict[bytes, Entry] = {}
        self.capacity = capacity
        self.kind = kind
        self.evictions = 0
        self.order = _Order(capacity, self)

    def add(self, key: bytes, entry: Entry) -> int:
        """Store ``entry`` (replacing any entry for ``key``); return how many
        entries were evicted to make room."""
        before = self.evictions
        self.order[key] = entry
        self.index[key] = entry
        return self.evictions - before

    def remove(self, key: bytes) -> None:
        self.index.pop(key, None)
        self.order.pop(key, None)

    def get(self, key: bytes) -> Entry | None:
        return self.index.get(key)

    def clear(self) -> None:
        self.index.clear()
        self.order.clear()

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: object) -> bool:
        return key in self.index
