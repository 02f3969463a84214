"""Classifying replies, as CoreDNS's ``plugin/pkg/response`` does.

The log plugin's classes (success, denial, error) and the cache's decision of
where a reply is stored both start from :func:`typify`.
"""

from __future__ import annotations

import time
from enum import Enum

from dnslib import DNSRecord

from . import wire as w


class Type(str, Enum):
    NOERROR = "NOERROR"
    NAMEERROR = "NXDOMAIN"
    NODATA = "NODATA"
    DELEGATION = "DELEGATION"
    META = "META"
    UPDATE = "UPDATE"
    SERVERERROR = "SERVERERROR"
    OTHERERROR = "OTHERERROR"


def _rrsig_expired(msg: DNSRecord, now: float) -> bool:
    for section in (msg.rr, msg.auth, msg.ar):
        for rr in section:
            if rr.rtype != 46:
                continue
            rd = rr.rdata
            inception = getattr(rd, "sig_inc", None)
            expiration = getattr(rd, "sig_exp", None)
            if inception is None or expiration is None:
                continue
            # RFC 4034 §3.1.5: serial-number arithmetic; valid if inception <= now <= expiration.
            t = int(now) & 0xFFFFFFFF
            if ((t - int(inception)) & 0xFFFFFFFF) >= 0x80000000:
                return True
            if ((int(expiration) - t) & 0xFFFFFFFF) >= 0x80000000:
                return True
    return False


def typify(msg: DNSRecord, now: float | None = None) -> Type:
    """The reply's class (CoreDNS ``response.Typify``)."""
    h = msg.header
    if h.opcode == 5:
        return Type.UPDATE
    if h.opcode == 4:
        return Type.META
    if msg.questions and msg.questions[0].qtype in (251, 252):
        return Type.META
    do = False
    for rr in msg.ar:
        if rr.rtype == w.OPT:
            do = bool(rr.ttl & w.DO_BIT)
    if do and _rrsig_expired(msg, time.time() if now is None else now):
        return Type.OTHERERROR
    rcode = h.rcode
    if msg.rr and rcode == w.NOERROR:
        return Type.NOERROR
    if msg.rr and rcode == w.NXDOMAIN:
        return Type.OTHERERROR
    soa = False
    ns = 0
    for rr in msg.auth:
        if rr.rtype == 6:
            soa = True
        elif rr.rtype == 2:
            ns += 1
    if soa and rcode == w.NOERROR:
        return Type.NODATA
    if rcode == w.NXDOMAIN:
        return Type.NAMEERROR
    if rcode in (w.SERVFAIL, w.NOTIMP):
        return Type.SERVERERROR
    if ns and rcode == w.NOERROR:
        return Type.DELEGATION
    if rcode == w.NOERROR:
        return Type.NOERROR
    return Type.OTHERERROR


#: The log plugin's class for each type (CoreDNS ``response.Classify``).
CLASS_OF = {
    Type.NOERROR: "success",
    Type.DELEGATION: "success",
    Type.NAMEERROR: "denial",
    Type.NODATA: "denial",
    Type.META: "error",
    Type.UPDATE: "error",
    Type.SERVERERROR: "error",
    Type.OTHERERROR: "error",
}
