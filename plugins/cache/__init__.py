"""CoreDNS's ``cache``: success and denial caches in front of the rest of the chain.

``cache [TTL] [ZONES...] { success | denial | prefetch | serve_stale |
serve_stale_policy | servfail | disable | keepttl }`` (see this folder's README.md).
Hits are served from packed bytes with the header and TTLs patched in place;
concurrent misses for one question share one upstream query.
"""

from .handler import Cache, CachedReply, Outcome
from .item import Entry
from .setup import CacheConfig

__all__ = ["Cache", "CacheConfig", "CachedReply", "Entry", "Outcome"]
