"""``pycorefile validate [--coredns] FILE...``: check Corefiles without serving them.

Each problem is printed on stdout as CoreDNS would print it
(``FILE:LINE - Error during parsing: ...``), with a hint on the next line where we
have one. Problems CoreDNS reports without a location (bad keys, duplicate zones,
some plugin errors) are prefixed with ``FILE: `` so several files can be checked
at once. Exit status: 0 when every file is valid, 1 otherwise, 2 for bad usage.

Without ``--coredns`` the question is "will pycorefile serve this?": a CoreDNS
plugin that pycorefile does not implement is a problem. With ``--coredns`` the
question is "will CoreDNS accept this?": such plugins are accepted (their options
are not checked), unknown directives are still errors.
"""

from __future__ import annotations

import argparse
import sys

from .errors import CorefileError
from .loading import iter_errors, read_text

__all__ = ["format_error", "main"]


def format_error(error: CorefileError, filename: str) -> str:
    """One problem as printed by ``validate`` (the hint, if any, on its own line)."""
    text = str(error)
    if not (error.filename and error.line):
        text = f"{filename}: {text}"
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycorefile validate",
        description="Check Corefiles; print one 'FILE:LINE - message' line per problem.",
    )
    parser.add_argument(
        "--coredns",
        action="store_true",
        help="check for CoreDNS itself: accept CoreDNS plugins pycorefile does not implement",
    )
    parser.add_argument(
        "-dns.port",
        "--dns-port",
        dest="dns_port",
        default="53",
        metavar="PORT",
        help="default port of dns:// keys (CoreDNS's -dns.port), default 53",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="Corefile(s) to check")
    return parser


def main(argv: list[str]) -> int:
    """Run ``validate`` with ``argv`` (without the program and sub-command names)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage
        return int(exc.code or 0)
    mode = "coredns" if args.coredns else "pycorefile"
    failed = False
    for filename in args.files:
        try:
            text = read_text(filename)
        except OSError as exc:
            print(f"{filename}: cannot read: {exc.strerror or exc}")
            failed = True
            continue
        for error in iter_errors(text, filename, dns_port=args.dns_port, mode=mode):
            print(format_error(error, filename))
            failed = True
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
