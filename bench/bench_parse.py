"""Corefile parsing speed: generate a 10,000-line Corefile and time ``parse``.

Parsing is not on the query path, but a large generated Corefile (one block per
tenant, say) should still load and reload in well under a second.

    python bench/bench_parse.py [LINES]
"""

from __future__ import annotations

import statistics
import sys
import time

from pycorefile.corefile import parse
from pycorefile.corefile.lexer import lex

# One server block: 20 lines with the usual mix (nested blocks, quotes, comments,
# env references, CIDR keys).
_BLOCK = """\
# tenant {i}
tenant{i}.example.org:{port} 10.{a}.{b}.0/24 {{
    bind 127.0.0.1
    errors
    log . "{{remote}} - {{name}} {{type}} {{rcode}}"
    cache 30 {{
        success 9984 30
        denial 9984 5
        prefetch 10 1m 10%
    }}
    template IN A tenant{i}.example.org {{
        match "^(?P<host>[a-z0-9-]+)[.]tenant{i}[.]example[.]org[.]$"
        answer "{{{{ .Name }}}} 60 IN A 10.{a}.{b}.1"
        fallthrough
    }}
    hosts {{
        10.{a}.{b}.2 db.tenant{i}.example.org # the database
        fallthrough
    }}
    forward . 10.0.0.1 10.0.0.2 {{ max_fails 3 }}
}}
"""


def make_corefile(lines: int) -> str:
    """A Corefile of about ``lines`` lines, every block distinct."""
    per_block = _BLOCK.count("\n")
    blocks = []
    for i in range(max(1, lines // per_block)):
        blocks.append(_BLOCK.format(i=i, port=1053 + i % 100, a=i // 256 % 256, b=i % 256))
    return "".join(blocks)


def main(argv: list[str]) -> int:
    lines = int(argv[0]) if argv else 10_000
    text = make_corefile(lines)
    n_lines = text.count("\n")
    parse(text, mode="coredns", env={})  # warm up: builds the lark lexer once
    # CPU time of this process (wall-clock time too): a busy machine slows the
    # wall clock, not the work.
    runs, walls = [], []
    for _ in range(5):
        cpu, wall = time.process_time(), time.perf_counter()
        corefile = parse(text, mode="coredns", env={})
        runs.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    lex_runs = []
    for _ in range(5):
        cpu = time.process_time()
        tokens = lex(text)
        lex_runs.append(time.process_time() - cpu)
    best, median = min(runs), statistics.median(runs)
    print(
        f"corefile: {n_lines} lines, {len(text)} bytes, {len(tokens)} tokens, "
        f"{len(corefile.blocks)} blocks"
    )
    print(f"lex only: best {min(lex_runs) * 1000:.1f} ms CPU")
    print(
        f"parse:    best {best * 1000:.1f} ms CPU, median {median * 1000:.1f} ms CPU "
        f"({n_lines / best:,.0f} lines/s); wall best {min(walls) * 1000:.1f} ms"
    )
    return 0 if best < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
