"""Property tests: tokens printed back as a Corefile read back the same."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycorefile.corefile import parse, tokenize
from pycorefile.corefile.lexer import quote_token
from pycorefile.corefile.model import Directive
from pycorefile.registry import Registry

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _writable(text: str) -> str:
    """``text``, minimally changed so that a Corefile can express it (see quote_token)."""
    while True:
        try:
            quote_token(text)
        except ValueError:
            text = text.replace('\\"', '"').rstrip("\\")
        else:
            return text


# Any text (no lone surrogates), including spaces, quotes, `#`, braces, `;`,
# newlines and Unicode whitespace: the printer must quote what needs quoting.
# (Strategies map rather than filter: hypothesis filters are slow here.)
token_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(' \t\n\r"\\#{};,$%\ufeff\u00a0\u2028x')),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=10,
).map(_writable)


@SETTINGS
@given(st.lists(st.lists(token_text, max_size=5), max_size=6))
def test_tokens_round_trip(lines: list[list[str]]) -> None:
    text = "\n".join(" ".join(quote_token(t) for t in line) for line in lines)
    expected = []
    line_no = 1
    for line in lines:
        for tok in line:
            expected.append((tok, line_no))
            line_no += tok.count("\n")
        line_no += 1
    assert [(t.text, t.line) for t in tokenize(text)] == expected


def test_quote_token_refuses_the_unwritable() -> None:
    for text in ("a b\\", 'a\\" b'):
        with pytest.raises(ValueError):
            quote_token(text)
    assert quote_token('a\\"b') == 'a\\"b'  # fine as a bare word


# -- whole Corefiles ------------------------------------------------------------------

NAMES = ("dir1", "dir2", "log", "whoami", "forward", "template")


def _argument(text: str) -> str:
    """Not structure for the parser (a brace, even quoted) and not changed by env
    substitution."""
    if text in ("{", "}"):
        return "x" + text
    return text.replace("{$", "{ $").replace("{%", "{ %")


def _line_name(text: str) -> str:
    return "imported" if text == "import" else text


def _zone_key(text: str) -> str:
    return "imported" if text == "import" else text


arg_text = token_text.map(_argument)
line_name = arg_text.map(_line_name)
label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
zone = st.lists(label, min_size=1, max_size=3).map(".".join).map(_zone_key)


leaf_line = st.tuples(line_name, st.lists(arg_text, max_size=3), st.none())
block_line = st.tuples(
    line_name, st.lists(arg_text, max_size=3), st.none() | st.lists(leaf_line, max_size=2)
)
directive = st.tuples(
    st.sampled_from(NAMES),
    st.lists(arg_text, max_size=4),
    st.none() | st.lists(block_line, max_size=3),
)
block = st.tuples(
    st.lists(zone, min_size=1, max_size=3, unique=True), st.lists(directive, max_size=4)
)


def _print_directive(d: Any, indent: str) -> str:
    name, args, sub = d
    head = indent + " ".join(quote_token(t) for t in (name, *args))
    if sub is None:
        return head + "\n"
    inner = "".join(_print_directive(s, indent + "    ") for s in sub)
    return head + " {\n" + inner + indent + "}\n"


def _shape(d: Directive) -> Any:
    return (d.name, list(d.args), None if d.block is None else [_shape(s) for s in d.block])


class _Registry(Registry):
    def load_entry_points(self) -> None:
        return None


_REGISTRY = _Registry()
for _name in NAMES:
    _REGISTRY.register(type(_name, (), {"name": _name}), _name)  # type: ignore[arg-type]


@SETTINGS
@given(st.lists(block, max_size=3))
def test_corefile_round_trip(blocks: list[Any]) -> None:
    # Zones must not repeat across blocks (that is a duplicate-zone error).
    seen: set[str] = set()
    kept = []
    for keys, directives in blocks:
        if seen.isdisjoint(keys):
            seen.update(keys)
            kept.append((keys, directives))
    text = "".join(
        " ".join(keys) + " {\n" + "".join(_print_directive(d, "    ") for d in directives) + "}\n"
        for keys, directives in kept
    )
    corefile = parse(text, env={}, registry=_REGISTRY)
    assert [[k.text for k in b.keys] for b in corefile.blocks] == [keys for keys, _ in kept]
    assert [[_shape(d) for d in b.directives] for b in corefile.blocks] == [
        [(n, a, None if s is None else [_sub_shape(x) for x in s]) for n, a, s in directives]
        for _, directives in kept
    ]


def _sub_shape(d: Any) -> Any:
    name, args, sub = d
    return (name, args, None if sub is None else [_sub_shape(x) for x in sub])
