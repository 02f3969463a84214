"""One zone's data and CoreDNS's ``file`` look-up algorithm over it.

Names are tuples of lower-cased labels (:data:`Name`), so label
arithmetic (parents, wildcards, "n labels from the right") is tuple slicing and
escaped dots cannot confuse it. The records themselves are dnslib ``RR`` objects,
shared by every reply that uses them and never mutated after loading.

The algorithm is CoreDNS's ``plugin/file/lookup.go``, including its corner cases:

* the apex SOA and NS are kept apart from the other names (a zone with nothing but
  an apex answers NXDOMAIN for other types at the apex, as CoreDNS does);
* the name is walked from the zone apex one label at a time, so a delegation (NS
  below the apex) or a DNAME higher up wins over anything below it;
* wildcards (RFC 4592) are remembered on the way down and used only when the full
  name does not exist and no closer empty non-terminal sits between them;
* CNAME chains inside the zone are followed; a target the zone does not have (or
  any target of an NS query) is resolved through the server itself, like
  CoreDNS's ``upstream`` package, by the :data:`Upstream` callback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from dnslib import CNAME, RR, DNSLabel

from pycorefile.zonetext import parse_name, read_records

__all__ = [
    "DELEGATION",
    "NAME_ERROR",
    "NO_DATA",
    "SERVER_FAILURE",
    "SUCCESS",
    "Name",
    "Node",
    "Upstream",
    "Zone",
    "ZoneLoadError",
    "label_of",
    "name_of",
]

#: A domain name as a tuple of raw labels, left to right, without the root label.
Name = tuple[bytes, ...]

# Results of a look-up (CoreDNS's file.Result).
SUCCESS, NAME_ERROR, DELEGATION, NO_DATA, SERVER_FAILURE = range(5)

#: CoreDNS gives up after this many CNAME/DNAME hops through the server
#: (``loop > 8``) and inside one zone's CNAME chain (``i > 8``).
MAX_LOOP = 8

_A, _NS, _CNAME, _SOA, _MX, _AAAA, _SRV, _DNAME, _DS, _RRSIG = 1, 2, 5, 6, 15, 28, 33, 39, 43, 46
_NSEC3, _NSEC3PARAM, _SVCB, _HTTPS = 50, 51, 64, 65
_ADDITIONAL_TYPES = frozenset({_SRV, _MX, _SVCB, _HTTPS})

#: ``await upstream(target, qtype, loop)`` → (answer records, result): the look-up
#: of a CNAME/DNAME target through the whole server (CoreDNS ``upstream.Lookup``).
Upstream = Callable[[Name, int, int], Awaitable[tuple[list[RR], int]]]

Lookup = tuple[list[RR], list[RR], list[RR], int]


class ZoneLoadError(ValueError):
    """A zone file that cannot be loaded (worded like CoreDNS's errors)."""


def name_of(label: DNSLabel) -> Name:
    """The lower-cased label tuple of a dnslib name."""
    return tuple(part.lower() for part in label.label)


def label_of(name: Name) -> DNSLabel:
    return DNSLabel(list(name))


def is_sub(parent: Name, child: Name) -> bool:
    """Is ``child`` equal to or below ``parent``?"""
    n = len(parent)
    return n == 0 or (len(child) >= n and child[-n:] == parent)


class Node:
    """The records of one owner name, by type, in zone-file order."""

    __slots__ = ("name", "rrsets")

    def __init__(self, name: Name) -> None:
        self.name = name
        self.rrsets: dict[int, list[RR]] = {}

    def get(self, rtype: int) -> list[RR]:
        return self.rrsets.get(rtype) or []


def _lowered(label: DNSLabel) -> DNSLabel:
    return DNSLabel([part.lower() for part in label.label])


class Zone:
    """The data of one zone, as loaded from one file for one origin."""

    def __init__(self, origin: Name, file: str = "") -> None:
        self.origin = origin
        self.file = file
        self.soa: RR | None = None
        self.ns: list[RR] = []
        self.nodes: dict[Name, Node] = {}
        # Every strict ancestor of a stored name: with ``nodes`` this answers
        # "is this an empty non-terminal?" (CoreDNS's hasDescendant).
        self.parents: set[Name] = set()

    # -- loading --------------------------------------------------------------
    @classmethod
    def load(cls, text: str, origin_text: str, file: str, serial: int | None = None) -> Zone | None:
        """Parse zone text for ``origin_text``; ``None`` if its first SOA has ``serial``.

        Raises :class:`ZoneLoadError` with CoreDNS's wording when the text does not
        parse or holds no SOA record.
        """
        origin = tuple(p.lower() for p in parse_name(origin_text, ()))
        zone = cls(origin, file)
        seen_soa = False
        try:
            for rr, _line in read_records(text, origin, file):
                if not seen_soa and rr.rtype == _SOA:
                    seen_soa = True
                    if serial is not None and rr.rdata.times[0] == serial:
                        return None
                zone.insert(rr)
        except ZoneLoadError:
            raise
        except Exception as exc:  # ZoneFileError, or a record dnslib could not take
            raise ZoneLoadError(
                f'failed to parse file "{file}" for origin {origin_text} with error {exc}'
            ) from None
        if not seen_soa:
            raise ZoneLoadError(f'file "{file}" has no SOA record for origin {origin_text}')
        return zone

    def insert(self, rr: RR) -> None:
        """Add one record the way CoreDNS's ``Zone.Insert`` does: owner names (except
        SRV's) and the targets of NS, SOA, CNAME, MX, SVCB and HTTPS lower-cased; the
        apex NS and any SOA kept in the apex; NSEC3 refused."""
        rtype = rr.rtype
        if rtype != _SRV:
            rr.rname = _lowered(rr.rname)
        owner = name_of(rr.rname)
        if rtype == _NS:
            rr.rdata.label = _lowered(rr.rdata.label)
            if owner == self.origin:
                self.ns.append(rr)
                return
        elif rtype == _SOA:
            rr.rdata.mname = _lowered(rr.rdata.mname)
            rr.rdata.rname = _lowered(rr.rdata.rname)
            self.soa = rr
            return
        elif rtype in (_NSEC3, _NSEC3PARAM):
            raise ZoneLoadError(
                f"NSEC3 zone is not supported, dropping RR: {rr.rname} for zone: {self.origin_text}"
            )
        elif rtype == _RRSIG:
            # Signatures over the apex SOA and NS live with the apex in CoreDNS and
            # are only served with DNSSEC, which pycorefile does not do.
            covered = getattr(rr.rdata, "covered", 0)
            if covered == _SOA or (covered == _NS and owner == self.origin):
                return
        elif rtype == _CNAME:
            rr.rdata.label = _lowered(rr.rdata.label)
        elif rtype == _MX:
            rr.rdata.label = _lowered(rr.rdata.label)
        elif rtype in (_SVCB, _HTTPS) and isinstance(getattr(rr.rdata, "target", None), list):
            rr.rdata.target = [part.lower() for part in rr.rdata.target]
        node = self.nodes.get(owner)
        if node is None:
            node = self.nodes[owner] = Node(owner)
            for i in range(1, len(owner)):
                self.parents.add(owner[i:])
            self.parents.add(())
        node.rrsets.setdefault(rtype, []).append(rr)

    # -- views ----------------------------------------------------------------
    @property
    def origin_text(self) -> str:
        return str(label_of(self.origin))

    @property
    def serial(self) -> int:
        """The SOA serial, or -1 without a SOA (CoreDNS's SOASerialIfDefined)."""
        return int(self.soa.rdata.times[0]) if self.soa is not None else -1

    def has_descendant(self, name: Name) -> bool:
        """Is ``name`` absent while something below it exists (an empty non-terminal)?"""
        return name not in self.nodes and name in self.parents

    def name_from_right(self, qname: Name, i: int) -> tuple[Name, bool]:
        """The origin plus ``i`` more labels of ``qname``; True once that overshoots."""
        if i <= 0:
            return self.origin, False
        k = len(self.origin) + i
        if k > len(qname):
            return qname, True
        return qname[len(qname) - k :], False

    # -- the look-up ----------------------------------------------------------
    async def lookup(self, qname: Name, qtype: int, loop: int, upstream: Upstream) -> Lookup:
        """CoreDNS's ``Zone.Lookup``: (answer, authority, additional, result)."""
        soa = self.soa
        if soa is None:
            return [], [], [], SERVER_FAILURE
        if qname == self.origin:
            if qtype == _SOA:
                return [soa], self.ns, [], SUCCESS
            if qtype == _NS:
                # CoreDNS calls this glue, although it is not.
                return self.ns, [], self.glue(self.ns), SUCCESS
        if loop > MAX_LOOP:
            # Back here for the ninth time through CNAMEs/DNAMEs: a loop.
            return [], [], [], SERVER_FAILURE

        nodes = self.nodes
        found = False
        elem: Node | None = None
        wild_elem: Node | None = None
        wild_name: Name | None = None
        i = 0
        while True:
            parts, shot = self.name_from_right(qname, i)
            if shot:
                break
            elem = nodes.get(parts)
            found = elem is not None
            if elem is None:
                # Remember a wildcard at this level (maybe itself an empty
                # non-terminal); keep walking, because this may just be an empty
                # non-terminal on the way to the full name.
                if len(parts) > 1:
                    wildcard = (b"*",) + parts[1:]
                    wild = nodes.get(wildcard)
                    if wild is not None:
                        wild_elem, wild_name = wild, wildcard
                    elif self.has_descendant(wildcard):
                        wild_elem, wild_name = None, wildcard
                i += 1
                continue

            dnames = elem.get(_DNAME)
            if dnames:
                cname = _synthesize_cname(qname, dnames[0])
                if cname is not None:
                    if name_of(cname.rname) == name_of(cname.rdata.label):
                        # A substitution that does not change the name can only loop.
                        return [], [], [], SERVER_FAILURE
                    if qtype == _CNAME:
                        # The synthesized CNAME is not chased for a CNAME query.
                        return [*dnames, cname], self.ns, [], SUCCESS
                    answer, ns, extra, result = await self.external_lookup(
                        qname, qtype, [cname], loop + 1, upstream
                    )
                    # The DNAME that was used goes in front of what it produced.
                    return [*dnames, *answer], ns, extra, result
                # A DNAME owner may hold other types: nothing special for the owner itself.

            delegation = self.delegation(elem, qname, qtype)
            if delegation is not None:
                return [], delegation[0], delegation[1], DELEGATION
            i += 1

        if found and elem is not None:
            cnames = elem.get(_CNAME)
            if cnames and qtype != _CNAME:
                return await self.external_lookup(qname, qtype, list(cnames), loop + 1, upstream)
            rrs = elem.get(qtype)
            if not rrs:
                return [], [soa], [], NO_DATA
            return list(rrs), self.ns, self.additional(rrs), SUCCESS

        # The name itself does not exist: a wildcard, unless a closer empty
        # non-terminal exists (then that is the closest encloser, RFC 4592 §2.2.2).
        if wild_name is not None and not self.closer_ent_exists(qname, wild_name):
            if wild_elem is None:
                return [], [soa], [], NO_DATA
            cnames = _expand(wild_elem.get(_CNAME), qname)
            if cnames and qtype != _CNAME:
                return await self.external_lookup(qname, qtype, cnames, loop + 1, upstream)
            rrs = _expand(wild_elem.get(qtype), qname)
            if not rrs:
                return [], [soa], [], NO_DATA
            return rrs, self.ns, self.additional(rrs), SUCCESS

        # An empty non-terminal is NODATA, not NXDOMAIN.
        result = SUCCESS if self.has_descendant(qname) else NAME_ERROR
        return [], [soa], [], result

    def closer_ent_exists(self, qname: Name, wildcard: Name) -> bool:
        """Is there an empty non-terminal between the wildcard's parent and qname?"""
        parent = wildcard[1:]
        for k in range(1, len(qname)):
            name = qname[k:]
            if name == parent or not is_sub(parent, name):
                return False
            if self.has_descendant(name):
                return True
        return False

    async def external_lookup(
        self, qname: Name, qtype: int, rrs: list[RR], loop: int, upstream: Upstream
    ) -> Lookup:
        """Follow the CNAME in ``rrs`` inside the zone, or through the server
        (CoreDNS's ``externalLookup``)."""
        rrs = list(rrs)
        target = name_of(rrs[0].rdata.label)
        elem = self.nodes.get(target)
        done = await self._hop(rrs, target, elem, qtype, loop, upstream)
        if done is not None:
            return done
        hops = 0
        while elem is not None:
            cnames = elem.get(_CNAME)
            if not cnames:
                rrs.extend(elem.get(qtype))
                break
            rrs.extend(cnames)
            target = name_of(cnames[0].rdata.label)
            elem = self.nodes.get(target)
            done = await self._hop(rrs, target, elem, qtype, loop, upstream)
            if done is not None:
                return done
            hops += 1
            if hops > MAX_LOOP:
                # A CNAME loop inside the zone: CoreDNS stops here and answers
                # with the chain so far.
                break
        return rrs, self.ns, self.additional(rrs), SUCCESS

    async def _hop(
        self,
        rrs: list[RR],
        target: Name,
        elem: Node | None,
        qtype: int,
        loop: int,
        upstream: Upstream,
    ) -> Lookup | None:
        """What one CNAME target leads to, unless the chain goes on in the zone:
        a referral for a target below a zone cut, or the server's answer for a
        target the zone does not hold (and for NS queries, and SOA at the apex)."""
        delegation = self.find_delegation(target, qtype, elem)
        if delegation is not None:
            return rrs, delegation[0], delegation[1], DELEGATION
        if elem is None or qtype == _NS or (qtype == _SOA and target == self.origin):
            found, result = await upstream(target, qtype, loop)
            rrs.extend(found)
            return rrs, self.authority(result), self.additional(rrs), result
        return None

    def authority(self, result: int) -> list[RR]:
        """SOA for negative results (RFC 2308), the apex NS otherwise."""
        if result in (NAME_ERROR, NO_DATA):
            return [self.soa] if self.soa is not None else []
        return self.ns

    def find_delegation(
        self, qname: Name, qtype: int, exact: Node | None
    ) -> tuple[list[RR], list[RR]] | None:
        """The first zone cut between the apex and ``qname`` (CoreDNS's findDelegation)."""
        i = 1
        while True:
            name, shot = self.name_from_right(qname, i)
            if shot:
                return None
            if name == qname:
                return self.delegation(exact, qname, qtype) if exact is not None else None
            elem = self.nodes.get(name)
            if elem is not None:
                delegation = self.delegation(elem, qname, qtype)
                if delegation is not None:
                    return delegation
            i += 1

    def delegation(self, elem: Node, qname: Name, qtype: int) -> tuple[list[RR], list[RR]] | None:
        """A referral from a zone cut; a DS query for the cut itself is the parent's
        to answer (RFC 4035 §3.1.4.1), so it gets none."""
        ns = elem.get(_NS)
        if not ns or (qtype == _DS and elem.name == qname):
            return None
        return ns, self.glue(ns)

    def glue(self, ns_records: Iterable[RR]) -> list[RR]:
        """A and AAAA records of NS targets below the NS owner (in-bailiwick glue)."""
        glue: list[RR] = []
        for rr in ns_records:
            target = name_of(rr.rdata.label)
            if is_sub(name_of(rr.rname), target):
                node = self.nodes.get(target)
                if node is not None:
                    glue.extend(node.get(_A))
                    glue.extend(node.get(_AAAA))
        return glue

    def additional(self, answer: Iterable[RR]) -> list[RR]:
        """A and AAAA of in-zone SRV/MX/SVCB/HTTPS targets, once per target."""
        extra: list[RR] = []
        seen: set[Name] | None = None
        for rr in answer:
            rtype = rr.rtype
            if rtype not in _ADDITIONAL_TYPES:
                continue
            target = _target_of(rr)
            if target is None or not is_sub(self.origin, target):
                continue
            if seen is None:
                seen = set()
            elif target in seen:
                continue
            seen.add(target)
            node = self.nodes.get(target)
            if node is not None:
                extra.extend(node.get(_A))
                extra.extend(node.get(_AAAA))
        return extra


def _target_of(rr: RR) -> Name | None:
    rtype = rr.rtype
    rdata = rr.rdata
    if rtype == _MX:
        return name_of(rdata.label)
    if rtype == _SRV:
        return name_of(rdata.target)
    target = getattr(rdata, "target", None)
    if isinstance(target, list):  # dnslib's SVCB/HTTPS keep the target as labels
        # (bytearrays when dnslib decoded them, from the RFC 3597 form: not hashable)
        return tuple(bytes(part).lower() for part in target) if target else None
    return None


def _expand(rrs: list[RR], qname: Name) -> list[RR]:
    """Wildcard records re-owned by the query name (RFC 4592 §3.3.1)."""
    if not rrs:
        return []
    owner = label_of(qname)
    return [RR(owner, rr.rtype, rr.rclass, rr.ttl, rr.rdata) for rr in rrs]


def _synthesize_cname(qname: Name, dname: RR) -> RR | None:
    """The CNAME a DNAME implies for a name below its owner (RFC 6672 §2.2)."""
    owner = name_of(dname.rname)
    if qname == owner or not is_sub(owner, qname):
        return None
    prefix = qname[: len(qname) - len(owner)]
    target = prefix + tuple(dname.rdata.label.label)
    return RR(label_of(qname), _CNAME, 1, dname.ttl, CNAME(label_of(target)))
