"""Go's ``text/template``, as the template plugin needs it.

CoreDNS renders every ``answer``, ``additional`` and ``authority`` argument of a
``template`` block with Go's ``text/template`` package before parsing the result as a
resource record. This module is that language for Python: parse once with
:func:`compile_template`, then render with :meth:`Template.execute` as often as needed.

What is covered is what people write in Corefiles, with Go's semantics and Go's
error messages (a user who pastes a working CoreDNS template gets the same output, a
broken one gets an error they recognise):

* text and ``{{ actions }}``, trim markers ``{{-`` / ``-}}``, comments ``{{/* */}}``;
* pipelines ``a | b``, parenthesised pipelines, field chains ``.Group.b``, ``$`` and
  variables (``$x := ...``, ``$x = ...``, ``range $i, $e := ...``);
* literals: strings with Go escapes, raw strings, characters, numbers (hex, octal,
  binary, floats), ``true``/``false``/``nil``;
* ``if``/``else if``/``else``, ``range`` (lists, maps in key order, integers) with
  ``else``, ``break`` and ``continue``, ``with``/``else with``/``else``;
* the builtins ``and or not len index slice eq ne lt le gt ge print printf println
  html js urlquery call``, plus functions from the caller (CoreDNS adds ``parseInt``,
  see :data:`COREDNS_FUNCS`).

Not covered: ``define``/``template``/``block`` (one template per RR argument, as in
CoreDNS) and complex numbers.

The data model maps Go's reflection onto Python objects:

* ``.Name`` on a mapping looks the key up; a missing key evaluates to "no value",
  which renders as ``<no value>`` (Go's default ``missingkey`` behaviour);
* ``.Name`` on any other object reads the attribute; if it is a bound method it is
  called, with the command's remaining arguments (``{{ .Meta "foo" }}``). A missing
  attribute is an execution error (``can't evaluate field Grup in type ...``);
  attributes starting with ``_`` are never reachable;
* values print as Go's ``fmt`` ``%v`` prints them: lists as ``[a b]``, mappings as
  ``map[k:v]`` with sorted keys, ``None`` as ``<nil>``, ``True`` as ``true``. Objects
  with their own ``__str__`` are Go ``Stringer`` s; other objects print like structs.

Python has one ``int`` where Go has sized and unsigned integers, and ``str`` is text
where Go strings are bytes. Where Go's behaviour depends on those differences (a
``uint64`` compared with an ``int``, ``\\xff`` escapes) this module does what is
useful for text; ``len`` and ``index`` on strings still count UTF-8 bytes, as in Go.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import struct
import types
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

__all__ = [
    "COREDNS_FUNCS",
    "NumError",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateSyntaxError",
    "compile_template",
    "parse_int",
]


# =========================================================================================
# Errors


class TemplateError(Exception):
    """A template that cannot be compiled or executed.

    The message is shaped like Go's, so ``str(error)`` is what CoreDNS would log.
    ``name`` is the template name, ``line`` the 1-based line and ``column`` the 0-based
    byte offset in that line (Go's counting), ``description`` the message without the
    ``template: NAME:...`` prefix.
    """

    def __init__(
        self, message: str, *, name: str, line: int, column: int, description: str
    ) -> None:
        super().__init__(message)
        self.name = name
        self.line = line
        self.column = column
        self.description = description


class TemplateSyntaxError(TemplateError):
    """The template text does not parse: ``template: answer:1: function "x" not defined``.

    Go reports only the line; ``column`` and :attr:`excerpt` (the line with a caret
    under the offending spot) are extra help for people reading a Corefile.
    """

    def __init__(
        self, *, name: str, line: int, column: int, description: str, excerpt: str
    ) -> None:
        super().__init__(
            f"template: {name}:{line}: {description}",
            name=name,
            line=line,
            column=column,
            description=description,
        )
        self.excerpt = excerpt


class TemplateExecError(TemplateError):
    """Executing the template failed, e.g. ``index`` out of range or an unknown field.

    ``template: answer:1:26: executing "answer" at <index .Match 2>: error calling
    index: index out of range: 2``. ``context`` is the part between ``<`` and ``>``.
    """

    def __init__(
        self, message: str, *, name: str, line: int, column: int, context: str, description: str
    ) -> None:
        super().__init__(message, name=name, line=line, column=column, description=description)
        self.context = context


class NumError(ValueError):
    """A failed ``strconv`` conversion, worded like Go's ``*strconv.NumError``.

    ``strconv.ParseUint: parsing "gg": invalid syntax``.
    """

    def __init__(self, func: str, num: str, err: str) -> None:
        super().__init__(f"strconv.{func}: parsing {_quote(num)}: {err}")
        self.func = func
        self.num = num
        self.err = err


class _Fail(Exception):
    """An execution error before the node it belongs to has added its location."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class _Break(Exception):
    """``{{break}}``: unwinds to the innermost ``range``."""


class _Continue(Exception):
    """``{{continue}}``: unwinds to the innermost ``range`` iteration."""


# =========================================================================================
# Values


class _NoValue:
    """Go's invalid ``reflect.Value``: what a missing map key evaluates to.

    It prints as ``<no value>``, is false, and field access on it gives itself again.
    Passed to a function's ``interface{}`` parameter it becomes ``nil`` (``None``).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


_NO_VALUE: Any = _NoValue()
# The value of the previous command in a pipeline, when there is none (Go's missingVal).
_NOFINAL: Any = object()
# A variable slot whose declaration has not run (yet, or any more).
_UNSET: Any = object()

# Types whose attributes are not template fields: Go's basic types have no fields or
# methods, and Python's would otherwise leak through (`.upper` on a string).
_NO_FIELDS = (str, bytes, bytearray, int, float, complex, bool, list, tuple, set, frozenset)


def _go_type(v: Any) -> str:
    """The Go type name that best describes ``v`` (for ``%T`` and error messages)."""
    if v is None or v is _NO_VALUE:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, (bytes, bytearray)):
        return "[]uint8"
    if isinstance(v, Mapping):
        return f"map[{_elem_type(v.keys())}]{_elem_type(v.values())}"
    if isinstance(v, (list, tuple)):
        return f"[]{_elem_type(v)}"
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "func"
    return type(v).__name__


def _elem_type(items: Iterable[Any]) -> str:
    names = {_go_type(x) for x in items}
    if len(names) == 1:
        name = names.pop()
        if name != "<nil>":
            return name
    return "interface {}"


def _truth(v: Any) -> bool:
    """Go's truth (``if``, ``with``, ``and``, ``or``, ``not``): not the zero value."""
    t = type(v)
    if t is str or t is list or t is dict or t is tuple:
        return len(v) > 0
    if t is bool or t is int or t is float:
        return bool(v)
    if v is None or v is _NO_VALUE:
        return False
    if isinstance(v, (str, bytes, bytearray, Mapping, Sequence, set, frozenset)):
        return len(v) > 0
    if isinstance(v, (int, float, complex)):
        return bool(v != 0)
    return True  # structs, functions, other objects


# -----------------------------------------------------------------------------------------
# Fields and methods


# What `.Name` means on values of a type: a key lookup, an attribute, or nothing.
_MAP, _OBJECT, _OPAQUE = 1, 2, 3
_FIELD_KINDS: dict[type, int] = {dict: _MAP, type(None): _OPAQUE, _NoValue: _OPAQUE}


def _field_kind(t: type) -> int:
    try:
        return _FIELD_KINDS[t]
    except KeyError:
        pass
    if issubclass(t, Mapping):
        kind = _MAP
    elif issubclass(t, _NO_FIELDS):
        kind = _OPAQUE
    else:
        kind = _OBJECT
    if len(_FIELD_KINDS) < 1000:
        _FIELD_KINDS[t] = kind
    return kind


def _get_field(recv: Any, name: str) -> Any:
    """``recv.Name`` with no arguments (a method is called with none)."""
    kind = _field_kind(type(recv))
    if kind == _MAP:
        # .get, not [name]: a defaultdict must not grow a key because a template looked.
        return recv.get(name, _NO_VALUE)
    if kind == _OBJECT and name[0] != "_":
        try:
            attr = getattr(recv, name)
        except AttributeError:
            pass
        except Exception as e:  # a property that failed: Go has no such thing, report as a call
            raise _Fail(f"error calling {name}: {e}") from None
        else:
            t = type(attr)
            if (t is types.MethodType or t is types.BuiltinMethodType) and attr.__self__ is recv:
                return _call_method(attr, name, [])
            return attr
    if recv is _NO_VALUE:
        # Go: a field of an invalid value is the invalid value (prints <no value>).
        return _NO_VALUE
    if recv is None:
        raise _Fail(f"nil pointer evaluating interface {{}}.{name}")
    raise _Fail(f"can't evaluate field {name} in type {_go_type(recv)}")


def _attribute(recv: Any, name: str) -> Any:
    if name[0] == "_" or isinstance(recv, _NO_FIELDS):
        raise _Fail(f"can't evaluate field {name} in type {_go_type(recv)}")
    try:
        return getattr(recv, name)
    except AttributeError:
        raise _Fail(f"can't evaluate field {name} in type {_go_type(recv)}") from None
    except Exception as e:  # a property that failed: Go has no such thing, report as a call
        raise _Fail(f"error calling {name}: {e}") from None


def _is_method(attr: Any, recv: Any) -> bool:
    t = type(attr)
    return (t is types.MethodType or t is types.BuiltinMethodType) and getattr(
        attr, "__self__", None
    ) is recv


def _call_method(fn: Callable[..., Any], name: str, args: list[Any]) -> Any:
    sig = _signature(fn)
    err = sig.arity_error(name, len(args), len(args))
    if err:
        raise _Fail(err)
    args = [_convert(a, sig.code_at(i)) for i, a in enumerate(args)]
    try:
        return fn(*args)
    except TemplateError:
        raise
    except Exception as e:
        raise _Fail(f"error calling {name}: {e}") from None


# =========================================================================================
# Function signatures and argument types
#
# Go checks a call's arguments against the function's parameter types. Builtins have
# three kinds of parameter: reflect.Value (gets the raw value, "no value" included),
# interface{} (a missing value arrives as nil) and concrete types (string, int...) that
# reject anything else. Caller functions get the concrete types from their annotations.

_VALUE = "reflect.Value"
_ANY = "interface {}"
_HINTS: dict[Any, str] = {str: "string", int: "int", float: "float64", bool: "bool"}


class _Sig:
    """Parameter codes of a function: fixed ones, then an optional variadic one."""

    __slots__ = ("fixed", "min", "variadic")

    def __init__(
        self, fixed: tuple[str, ...], variadic: str | None = None, min: int | None = None
    ) -> None:
        self.fixed = fixed
        self.variadic = variadic
        self.min = len(fixed) if min is None else min

    def code_at(self, i: int) -> str:
        if i < len(self.fixed):
            return self.fixed[i]
        return self.variadic or _ANY

    def arity_error(self, name: str, nargs: int, total: int) -> str | None:
        """Go's message for a wrong argument count, or None.

        ``nargs`` counts the written arguments, ``total`` adds the piped-in value; Go
        uses one or the other depending on the message.
        """
        if self.variadic is not None:
            if total < self.min:
                return f"wrong number of args for {name}: want at least {self.min} got {nargs}"
        elif not self.min <= total <= len(self.fixed):
            want = len(self.fixed) if self.min == len(self.fixed) else self.min
            return f"wrong number of args for {name}: want {want} got {total}"
        return None


_SIGNATURES: dict[tuple[types.FunctionType, bool], _Sig] = {}


def _signature(fn: Callable[..., Any]) -> _Sig:
    """The :class:`_Sig` of a Python callable, from its signature and annotations."""
    # Cache by the underlying function: bound methods are new objects on every access.
    func = getattr(fn, "__func__", fn)
    key = (func, func is not fn) if isinstance(func, types.FunctionType) else None
    if key is not None and key in _SIGNATURES:
        return _SIGNATURES[key]
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        sig = _Sig((), _ANY)
    else:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        fixed: list[str] = []
        required = 0
        variadic: str | None = None
        for p in params:
            code = _HINTS.get(hints.get(p.name), _ANY)
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                fixed.append(code)
                if p.default is p.empty:
                    required = len(fixed)
            elif p.kind is p.VAR_POSITIONAL:
                variadic = code
        sig = _Sig(tuple(fixed), variadic, required)
    if key is not None:
        _SIGNATURES[key] = sig
    return sig


def _convert(v: Any, code: str) -> Any:
    """Check (and adapt) an argument value for a parameter, with Go's messages."""
    if code is _VALUE:
        return v
    if code is _ANY:
        return None if v is _NO_VALUE else v
    if v is _NO_VALUE or v is None:
        raise _Fail(f"invalid value; expected {code}")
    if code == "string":
        ok = isinstance(v, str)
    elif code == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif code == "float64":
        ok = isinstance(v, float)
    elif code == "bool":
        ok = isinstance(v, bool)
    else:  # pragma: no cover - codes come from _HINTS
        ok = True
    if not ok:
        raise _Fail(f"wrong type for value; expected {code}; got {_go_type(v)}")
    return v


# =========================================================================================
# fmt: Go's formatting of values (%v and the Printf verbs)


class _Spec:
    """Flags, width and precision of one Printf verb (``None``: not given)."""

    __slots__ = ("minus", "plus", "plus_v", "prec", "sharp", "sharp_v", "space", "wid", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid: int | None = None
        self.prec: int | None = None


_PLAIN = _Spec()  # %v without flags; never modified


def _pad(s: str, spec: _Spec, zero: bool | None = None) -> str:
    """Pad to the width (counted in characters, like Go's runes)."""
    wid = spec.wid
    if not wid or len(s) >= wid:
        return s
    n = wid - len(s)
    if spec.minus:
        return s + " " * n
    if spec.zero if zero is None else zero:
        return "0" * n + s
    return " " * n + s


def _print_value(v: Any) -> str:
    """How an action prints its value: ``fmt.Fprint`` with Go's ``<no value>``."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is int:
        return str(v)
    if v is _NO_VALUE:
        return "<no value>"
    return _fmt(v, "v", _PLAIN)


def _fmt(v: Any, verb: str, spec: _Spec) -> str:
    """One operand of Printf: Go's ``printArg``."""
    if v is None or v is _NO_VALUE:
        if verb in "vT":
            return _pad("<nil>", spec)
        return _bad_verb(v, verb, spec)
    if verb == "T":
        return _fmt_s(_go_type(v), spec)
    if verb == "p":  # an address: Python has ids where Go has pointers
        if isinstance(v, (str, bytes, int, float, complex, bool)):
            return _bad_verb(v, verb, spec)
        addr = format(id(v), "x")
        return _pad(addr if spec.sharp else "0x" + addr, spec)
    t = type(v)
    if t is str:
        return _fmt_string(v, verb, spec)
    if t is int:
        return _fmt_int(v, verb, spec)
    if t is bool:
        return _fmt_bool(v, verb, spec)
    if t is float:
        return _fmt_float(v, verb, spec)
    # A String() method (Python: its own __str__) wins over the kind, except for %#v.
    if verb in "vsxXq" and not spec.sharp_v and _is_stringer(t):
        try:
            text = str(v)
        except Exception as e:  # fmt reports a panicking String method in the output
            return f"%!{verb}(PANIC=String method: {e})"
        return _fmt(text, verb, spec)
    if isinstance(v, bool):
        return _fmt_bool(bool(v), verb, spec)
    if isinstance(v, int):
        return _fmt_int(int(v), verb, spec)
    if isinstance(v, str):
        return _fmt_string(str(v), verb, spec)
    if isinstance(v, float):
        return _fmt_float(float(v), verb, spec)
    if isinstance(v, complex):
        return _fmt_complex(v, verb, spec)
    if isinstance(v, (bytes, bytearray)):
        return _fmt_bytes(bytes(v), verb, spec)
    if isinstance(v, Mapping):
        return _fmt_map(v, verb, spec)
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        return _fmt_list(v, verb, spec)
    fields = _struct_fields(v)
    if fields is not None:
        return _fmt_struct(v, fields, verb, spec)
    if isinstance(v, (Sequence, set, frozenset)):
        return _fmt_list(list(v), verb, spec)
    return _fmt_s(str(v), spec)


# Types whose __str__ is not a String() method in Go's sense.
_BUILTIN_TYPES = (
    str,
    int,
    float,
    complex,
    bool,
    bytes,
    bytearray,
    list,
    tuple,
    dict,
    set,
    frozenset,
)
_STRINGERS: dict[type, bool] = {}


def _is_stringer(t: type) -> bool:
    try:
        return _STRINGERS[t]
    except KeyError:
        pass
    s = getattr(t, "__str__", object.__str__)
    result = s is not object.__str__ and not any(s is base.__str__ for base in _BUILTIN_TYPES)
    if len(_STRINGERS) < 1000:
        _STRINGERS[t] = result
    return result


def _struct_fields(v: Any) -> list[tuple[str, Any]] | None:
    """Public fields of an object printed like a Go struct, or None if it has none."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return [
            (f.name, getattr(v, f.name))
            for f in dataclasses.fields(v)
            if not f.name.startswith("_")
        ]
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return [(n, getattr(v, n)) for n in v._fields if not n.startswith("_")]
    d = getattr(v, "__dict__", None)
    if isinstance(d, dict) and not isinstance(v, (type, types.ModuleType)) and not callable(v):
        return [(k, x) for k, x in d.items() if not k.startswith("_")]
    slots = getattr(type(v), "__slots__", None)
    if slots and not callable(v):
        if isinstance(slots, str):
            slots = (slots,)
        return [(n, getattr(v, n, None)) for n in slots if not n.startswith("_")]
    return None


def _bad_verb(v: Any, verb: str, spec: _Spec) -> str:
    """``%!d(string=hi)``: a verb that does not fit the operand."""
    if v is None or v is _NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(v)}={_fmt(v, 'v', spec)})"


def _fmt_bool(v: bool, verb: str, spec: _Spec) -> str:
    if verb in "tv":
        return _pad("true" if v else "false", spec)
    return _bad_verb(v, verb, spec)


def _fmt_int(v: int, verb: str, spec: _Spec) -> str:
    if verb in "dv":
        return _fmt_integer(v, 10, spec, verb)
    if verb == "x":
        return _fmt_integer(v, 16, spec, verb)
    if verb == "X":
        return _fmt_integer(v, 16, spec, verb, upper=True)
    if verb in "oO":
        return _fmt_integer(v, 8, spec, verb)
    if verb == "b":
        return _fmt_integer(v, 2, spec, verb)
    if verb == "c":
        return _pad(_rune(v), spec)
    if verb == "q":
        return _pad(_quote(_rune(v), "'", spec.plus), spec)
    if verb == "U":
        return _fmt_unicode(v, spec)
    return _bad_verb(v, verb, spec)  # no float verbs on integers either


def _rune(v: int) -> str:
    if 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF:
        return chr(v)
    return "\ufffd"


def _fmt_integer(v: int, base: int, spec: _Spec, verb: str, upper: bool = False) -> str:
    negative = v < 0
    u = -v if negative else v
    prec = 0
    if spec.prec is not None:
        prec = spec.prec
        if prec == 0 and u == 0:  # %.0d of 0 prints nothing (but still pads)
            return " " * (spec.wid or 0)
    elif spec.zero and spec.wid is not None and not spec.minus:
        prec = spec.wid  # %05d: zeros go after the sign
        if negative or spec.plus or spec.space:
            prec -= 1
    if base == 10:
        digits = str(u)
    elif base == 16:
        digits = format(u, "X" if upper else "x")
    elif base == 8:
        digits = format(u, "o")
    else:
        digits = format(u, "b")
    if len(digits) < prec:
        digits = "0" * (prec - len(digits)) + digits
    if spec.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8 and digits[0] != "0":
            digits = "0" + digits
        elif base == 16:
            digits = ("0X" if upper else "0x") + digits
    if verb == "O":
        digits = "0o" + digits
    if negative:
        digits = "-" + digits
    elif spec.plus:
        digits = "+" + digits
    elif spec.space:
        digits = " " + digits
    return _pad(digits, spec, zero=False)


def _fmt_unicode(v: int, spec: _Spec) -> str:
    u = v & 0xFFFFFFFFFFFFFFFF
    prec = spec.prec if spec.prec is not None and spec.prec > 4 else 4
    s = "U+" + format(u, "X").rjust(prec, "0")
    if spec.sharp and u <= 0x10FFFF and chr(u).isprintable():
        s += f" '{chr(u)}'"
    return _pad(s, spec, zero=False)


# Floats -----------------------------------------------------------------------------------


def _digits(s: str) -> tuple[str, int]:
    """Decimal digits (no leading/trailing zeros) and point position of ``s``.

    ``s`` is a non-negative number as Python formats it (``123.45``, ``1.5e-05``).
    Zero is ``("", 0)``, as in Go's ``decimal`` type.
    """
    mant, _, exp = s.partition("e")
    ip, _, fp = mant.partition(".")
    d = ip + fp
    dp = len(ip) + (int(exp) if exp else 0)
    stripped = d.lstrip("0")
    dp -= len(d) - len(stripped)
    d = stripped.rstrip("0")
    return (d, dp) if d else ("", 0)


def _fmt_e(d: str, dp: int, prec: int, e: str) -> str:
    s = d[0] if d else "0"
    if prec > 0:
        s += "." + d[1 : prec + 1].ljust(prec, "0")
    exp = dp - 1 if d else 0
    sign = "-" if exp < 0 else "+"
    return f"{s}{e}{sign}{abs(exp):02d}"


def _fmt_f(d: str, dp: int, prec: int) -> str:
    s = d[:dp].ljust(dp, "0") if dp > 0 else "0"
    if prec > 0:
        s += "." + "".join(d[dp + i] if 0 <= dp + i < len(d) else "0" for i in range(prec))
    return s


def _ftoa(x: float, verb: str, prec: int) -> str:
    """``strconv.FormatFloat(x, verb, prec, 64)`` for finite non-negative x."""
    if verb in "eE":
        if prec < 0:
            d, dp = _digits(repr(x))
            return _fmt_e(d, dp, max(len(d) - 1, 0), verb)
        return format(x, f".{prec}{verb}")  # same rounding (exact, half-even) and layout
    if verb in "fF":
        if prec < 0:
            d, dp = _digits(repr(x))
            return _fmt_f(d, dp, max(len(d) - dp, 0))
        return format(x, f".{prec}f")
    # %g / %G: Go's rules, which differ from C's in the shortest case.
    e = "e" if verb == "g" else "E"
    if prec < 0:
        d, dp = _digits(repr(x))
        prec = len(d)
        eprec = 6
    else:
        if prec == 0:
            prec = 1
        d, dp = _digits(format(x, f".{prec - 1}e"))
        eprec = prec
        if eprec > len(d) and len(d) >= dp:
            eprec = len(d)
    exp = dp - 1
    if exp < -4 or exp >= eprec:
        return _fmt_e(d, dp, min(prec, len(d)) - 1, e)
    if prec > dp:
        prec = len(d)
    return _fmt_f(d, dp, max(prec - dp, 0))


def _hex_float(x: float, upper: bool) -> str:
    """``%x`` of a finite non-negative float: ``0x1.8p+01``."""
    if x == 0:
        s = "0x0p+00"
    else:
        m, e = math.frexp(x)  # x = m * 2**e, 0.5 <= m < 1
        m, e = m * 2, e - 1
        mant = float.hex(m)  # 0x1.xxxxp+0
        frac = mant[4 : mant.index("p")].rstrip("0")
        s = "0x1" + ("." + frac if frac else "") + ("p-" if e < 0 else "p+") + f"{abs(e):02d}"
    return s.upper() if upper else s


def _binary_float(x: float) -> str:
    """``%b`` of a finite non-negative float: ``4503599627370496p-52`` (mantissa, 2's exp)."""
    bits = struct.unpack(">Q", struct.pack(">d", x))[0]
    exp = (bits >> 52) & 0x7FF
    mant = bits & ((1 << 52) - 1)
    if exp == 0:
        exp = 1  # subnormal: no implicit leading bit
    else:
        mant |= 1 << 52
    exp -= 1023 + 52
    return f"{mant}p{'+' if exp >= 0 else ''}{exp}"


def _fmt_float(v: float, verb: str, spec: _Spec, force_plus: bool = False) -> str:
    if verb == "v":
        verb, prec = "g", -1
    elif verb in "eEfF":
        prec = 6
    elif verb in "bgGxX":
        prec = -1
    else:
        return _bad_verb(v, verb, spec)
    if spec.prec is not None:
        prec = spec.prec
    plus = spec.plus or force_plus
    neg = math.copysign(1.0, v) < 0 and not math.isnan(v)
    a = abs(v)
    if math.isinf(a) or math.isnan(a):
        # Infinities always carry a sign; NaN only when asked for. No zero padding.
        sign = "-" if neg else (" " if spec.space and not plus else "+")
        if math.isnan(a):
            sign = "+" if plus else (" " if spec.space else "")
        return _pad(sign + ("Inf" if math.isinf(a) else "NaN"), spec, zero=False)
    if verb in "xX":
        num = _hex_float(a, verb == "X")
    elif verb == "b":
        num = _binary_float(a)
    else:
        num = _ftoa(a, verb, prec)
    if spec.sharp and verb != "b":
        # '#': always a decimal point; for %g keep trailing zeros up to the precision.
        digits = 0
        if verb in "gGx":
            digits = 6 if prec == -1 else prec
        tail = ""
        for mark in ("p", "P") if verb in "xX" else ("e", "E"):
            i = num.find(mark)
            if i >= 0:
                num, tail = num[:i], num[i:]
                break
        has_point = "." in num
        seen_nonzero = False
        for ch in num.replace(".", ""):
            if ch != "0":
                seen_nonzero = True
            if seen_nonzero:
                digits -= 1
        if not has_point:
            if num == "0":
                digits -= 1
            num += "."
        if digits > 0:
            num += "0" * digits
        num += tail
    sign = "-" if neg else ("+" if plus else (" " if spec.space else ""))
    if spec.zero and not spec.minus and spec.wid and spec.wid > len(num) + len(sign):
        return sign + "0" * (spec.wid - len(num) - len(sign)) + num
    return _pad(sign + num, spec, zero=False)


def _fmt_complex(v: complex, verb: str, spec: _Spec) -> str:
    if verb not in "vbeEfFgG":
        return _bad_verb(v, verb, spec)
    return (
        "("
        + _fmt_float(v.real, verb, spec)
        + _fmt_float(v.imag, verb, spec, force_plus=True)
        + "i)"
    )


# Strings ----------------------------------------------------------------------------------

_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
}


def _quote(s: str, quote: str = '"', ascii_only: bool = False) -> str:
    """Go's ``strconv.Quote`` (or ``QuoteRune`` with ``quote="'"``)."""
    out = [quote]
    for c in s:
        if c == quote or c == "\\":
            out.append("\\" + c)
            continue
        o = ord(c)
        if 0x20 <= o < 0x7F or (o >= 0x80 and not ascii_only and c.isprintable()):
            out.append(c)
        elif c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{0xFFFD if 0xD800 <= o <= 0xDFFF else o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append(quote)
    return "".join(out)


def _can_backquote(s: str) -> bool:
    return not any(c == "`" or c == "\ufeff" or (c < " " and c != "\t") or c == "\x7f" for c in s)


def _fmt_s(s: str, spec: _Spec) -> str:
    if spec.prec is not None:
        s = s[: spec.prec]
    return _pad(s, spec)


def _fmt_q(s: str, spec: _Spec) -> str:
    if spec.prec is not None:
        s = s[: spec.prec]
    if spec.sharp and _can_backquote(s):
        return _pad("`" + s + "`", spec)
    return _pad(_quote(s, '"', spec.plus), spec)


def _fmt_hex_bytes(b: bytes, spec: _Spec, upper: bool) -> str:
    n = len(b)
    if spec.prec is not None and spec.prec < n:
        n = spec.prec
    if n == 0:
        return _pad("", spec) if spec.wid else ""
    prefix = "0X" if upper else "0x"
    parts = []
    for i in range(n):
        h = f"{b[i]:02X}" if upper else f"{b[i]:02x}"
        if spec.space and i > 0:
            parts.append(" " + (prefix if spec.sharp else "") + h)
        else:
            parts.append(h)
    s = (prefix if spec.sharp else "") + "".join(parts)
    return _pad(s, spec)


def _fmt_string(s: str, verb: str, spec: _Spec) -> str:
    if verb == "v":
        return _fmt_q(s, spec) if spec.sharp_v else _fmt_s(s, spec)
    if verb == "s":
        return _fmt_s(s, spec)
    if verb == "q":
        return _fmt_q(s, spec)
    if verb in "xX":
        return _fmt_hex_bytes(s.encode("utf-8"), spec, verb == "X")
    return _bad_verb(s, verb, spec)


def _fmt_bytes(b: bytes, verb: str, spec: _Spec) -> str:
    if verb in "vd":
        if spec.sharp_v:
            return "[]byte{" + ", ".join(f"0x{c:x}" for c in b) + "}"
        return "[" + " ".join(_fmt_integer(c, 10, spec, "d") for c in b) + "]"
    if verb == "s":
        return _fmt_s(b.decode("utf-8", "replace"), spec)
    if verb == "q":
        return _fmt_q(b.decode("utf-8", "replace"), spec)
    if verb in "xX":
        return _fmt_hex_bytes(b, spec, verb == "X")
    return _bad_verb(b, verb, spec)


# Compound values ----------------------------------------------------------------------------


def _sorted_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Map keys in Go's printing/ranging order (fmtsort): by value within one type."""
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=lambda k: (type(k).__name__, str(k)))


def _fmt_list(v: Sequence[Any], verb: str, spec: _Spec) -> str:
    if spec.sharp_v:
        return _go_type(v) + "{" + ", ".join(_fmt(x, verb, spec) for x in v) + "}"
    return "[" + " ".join(_fmt(x, verb, spec) for x in v) + "]"


def _fmt_map(m: Mapping[Any, Any], verb: str, spec: _Spec) -> str:
    items = [_fmt(k, verb, spec) + ":" + _fmt(m[k], verb, spec) for k in _sorted_keys(m)]
    if spec.sharp_v:
        return _go_type(m) + "{" + ", ".join(items) + "}"
    return "map[" + " ".join(items) + "]"


def _fmt_struct(v: Any, fields: list[tuple[str, Any]], verb: str, spec: _Spec) -> str:
    if spec.sharp_v:
        return (
            type(v).__name__
            + "{"
            + ", ".join(f"{n}:{_fmt(x, verb, spec)}" for n, x in fields)
            + "}"
        )
    if spec.plus_v:
        return "{" + " ".join(f"{n}:{_fmt(x, verb, spec)}" for n, x in fields) + "}"
    return "{" + " ".join(_fmt(x, verb, spec) for _, x in fields) + "}"


# Print, Println, Printf -------------------------------------------------------------------


def _sprint(args: Sequence[Any]) -> str:
    """``fmt.Sprint``: a space between two operands when neither is a string."""
    out = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(_fmt(a, "v", _PLAIN))
        prev_string = is_string
    return "".join(out)


def _sprintln(args: Sequence[Any]) -> str:
    """``fmt.Sprintln``: always spaces between operands, and a newline."""
    return " ".join(_fmt(a, "v", _PLAIN) for a in args) + "\n"


def _parsenum(s: str, i: int, end: int) -> tuple[int, bool, int]:
    j = i
    while j < end and "0" <= s[j] <= "9":
        j += 1
    if j == i:
        return 0, False, i
    n = int(s[i:j])
    if n > 1_000_000:  # Go refuses absurd widths
        return 0, False, j
    return n, True, j


def _int_from_arg(args: Sequence[Any], argnum: int) -> tuple[int, bool, int]:
    if argnum < len(args):
        a = args[argnum]
        if isinstance(a, int) and not isinstance(a, bool) and -1_000_000 <= a <= 1_000_000:
            return a, True, argnum + 1
        return 0, False, argnum + 1
    return 0, False, argnum


def _arg_number(format: str, i: int, argnum: int, nargs: int) -> tuple[int, int, bool, bool]:
    """An explicit ``[n]`` at ``format[i]``: (argnum, next i, found, good).

    ``found`` says a well-formed ``[n]`` was there (an index makes the next width or
    precision invalid); ``good`` is False for a malformed or out-of-range index.
    """
    if i >= len(format) or format[i] != "[":
        return argnum, i, False, True
    if len(format) - i < 3:
        return argnum, i + 1, False, False
    close = format.find("]", i + 1)
    if close < 0:
        return argnum, i + 1, False, False
    n, ok, k = _parsenum(format, i + 1, close)
    if not ok or k != close:
        return argnum, close + 1, False, False
    if 0 <= n - 1 < nargs:
        return n - 1, close + 1, True, True
    return argnum, close + 1, True, False


def _sprintf(format: str, args: Sequence[Any]) -> str:
    """``fmt.Sprintf`` with Go's verbs, flags, ``*`` widths, ``[n]`` indexes and errors."""
    out: list[str] = []
    end = len(format)
    argnum = 0
    reordered = False
    i = 0
    while i < end:
        j = format.find("%", i)
        if j < 0:
            out.append(format[i:])
            break
        if j > i:
            out.append(format[i:j])
        i = j + 1
        good = True
        spec = _Spec()
        while i < end:
            c = format[i]
            if c == "#":
                spec.sharp = True
            elif c == "0":
                spec.zero = not spec.minus  # zero padding only on the left
            elif c == "+":
                spec.plus = True
            elif c == "-":
                spec.minus = True
                spec.zero = False
            elif c == " ":
                spec.space = True
            else:
                break
            i += 1

        reordered = reordered or format.startswith("[", i)
        argnum, i, after_index, ok = _arg_number(format, i, argnum, len(args))
        good = good and ok
        if i < end and format[i] == "*":
            i += 1
            wid, ok, argnum = _int_from_arg(args, argnum)
            if not ok:
                out.append("%!(BADWIDTH)")
            else:
                spec.wid = wid
                if wid < 0:
                    spec.wid = -wid
                    spec.minus = True
                    spec.zero = False
            after_index = False
        else:
            wid, present, i = _parsenum(format, i, end)
            if present:
                spec.wid = wid
                if after_index:  # "%[3]2d"
                    good = False
        if i < end and format[i] == ".":
            i += 1
            if after_index:  # "%[3].2d"
                good = False
            reordered = reordered or format.startswith("[", i)
            argnum, i, after_index, ok = _arg_number(format, i, argnum, len(args))
            good = good and ok
            if i < end and format[i] == "*":
                i += 1
                prec, ok, argnum = _int_from_arg(args, argnum)
                if prec < 0:
                    ok = False
                if ok:
                    spec.prec = prec
                else:
                    out.append("%!(BADPREC)")
                after_index = False
            else:
                prec, present, i = _parsenum(format, i, end)
                spec.prec = prec if present else 0
        if not after_index:
            reordered = reordered or format.startswith("[", i)
            argnum, i, after_index, ok = _arg_number(format, i, argnum, len(args))
            good = good and ok
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = format[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good:
            out.append(f"%!{verb}(BADINDEX)")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                spec.sharp_v, spec.sharp = spec.sharp, False
                spec.plus_v, spec.plus = spec.plus, False
            out.append(_fmt(args[argnum], verb, spec))
            argnum += 1
    if not reordered and argnum < len(args):
        extra = []
        for a in args[argnum:]:
            extra.append("<nil>" if a is None else f"{_go_type(a)}={_fmt(a, 'v', _PLAIN)}")
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)


# =========================================================================================
# strconv


def _lower(c: str) -> str:
    return c.lower() if "A" <= c <= "Z" else c


def _underscore_ok(s: str) -> bool:
    """Go's rule: ``_`` only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and _lower(s[1]) in "box":
        i = 2
        saw = "0"
        hexa = _lower(s[1]) == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= _lower(c) <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _parse_uint(s: str, base: int, bit_size: int, func: str = "ParseUint") -> int:
    """``strconv.ParseUint``, with Go's errors (as :class:`NumError`)."""
    if s == "":
        raise NumError(func, s, "invalid syntax")
    base0 = base == 0
    s0 = s
    if 2 <= base <= 36:
        pass
    elif base == 0:
        base = 10
        if s[0] == "0":
            if len(s) >= 3 and _lower(s[1]) == "b":
                base, s = 2, s[2:]
            elif len(s) >= 3 and _lower(s[1]) == "o":
                base, s = 8, s[2:]
            elif len(s) >= 3 and _lower(s[1]) == "x":
                base, s = 16, s[2:]
            else:
                base, s = 8, s[1:]
    else:
        raise NumError(func, s0, f"invalid base {base}")
    if bit_size == 0:
        bit_size = 64
    elif bit_size < 0 or bit_size > 64:
        raise NumError(func, s0, f"invalid bit size {bit_size}")
    max_val = (1 << bit_size) - 1
    n = 0
    underscores = False
    for c in s:
        if c == "_" and base0:
            underscores = True
            continue
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "a" <= _lower(c) <= "z":
            d = ord(_lower(c)) - 87
        else:
            raise NumError(func, s0, "invalid syntax")
        if d >= base:
            raise NumError(func, s0, "invalid syntax")
        n = n * base + d
        if n > max_val:
            raise NumError(func, s0, "value out of range")
    if underscores and not _underscore_ok(s0):
        raise NumError(func, s0, "invalid syntax")
    return n


def parse_int(s: str, base: int, bits: int) -> int:
    """CoreDNS's ``parseInt`` template function: Go's ``strconv.ParseUint(s, base, bits)``.

    ``{{ parseInt .Group.b 16 8 }}`` turns the hex byte ``5f`` into ``95``. Raises
    :class:`NumError` (``strconv.ParseUint: parsing "gg": invalid syntax``), which the
    template reports as ``error calling parseInt: ...``.
    """
    return _parse_uint(s, base, bits)


#: The functions CoreDNS's template plugin adds to Go's builtins.
COREDNS_FUNCS: Mapping[str, Callable[..., Any]] = types.MappingProxyType({"parseInt": parse_int})


def _parse_go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``, or None."""
    neg = text[:1] == "-"
    body = text[1:] if text[:1] in "+-" else text
    try:
        u = _parse_uint(body, 0, 64)
    except NumError:
        return None
    if (not neg and u >= 1 << 63) or (neg and u > 1 << 63):
        return None
    return -u if neg else u


def _parse_go_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)`` for what the lexer lets through, or None."""
    body = text.lstrip("+-")
    try:
        if body[:2].lower() == "0x":
            if "p" not in body.lower():
                return None
            f = float.fromhex(body.replace("_", ""))
        elif body[:2].lower() in ("0b", "0o"):
            return None
        else:
            f = float(body)
    except ValueError:
        return None
    if "_" in body and not _underscore_ok(body):
        return None
    return -f if text.startswith("-") else f


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _unquote_char(s: str, i: int, quote: str) -> tuple[int, bool, int]:
    """One (possibly escaped) character of a quoted literal: (value, is_byte, next i)."""
    c = s[i]
    if c != "\\":
        return ord(c), False, i + 1
    if i + 1 >= len(s):
        raise ValueError
    c = s[i + 1]
    i += 2
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], False, i
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        h = s[i : i + n]
        if len(h) != n or any(ch not in "0123456789abcdefABCDEF" for ch in h):
            raise ValueError
        v = int(h, 16)
        if c == "x":
            return v, True, i + n
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise ValueError
        return v, False, i + n
    if "0" <= c <= "7":
        o = s[i - 1 : i + 2]
        if len(o) != 3 or any(ch not in "01234567" for ch in o):
            raise ValueError
        v = int(o, 8)
        if v > 255:
            raise ValueError
        return v, True, i + 2
    if c == quote:
        return ord(c), False, i
    raise ValueError


def _unquote(text: str) -> str:
    """``strconv.Unquote`` of a string literal token; ValueError for a bad escape.

    ``\\x`` and octal escapes are bytes in Go; here the result is text, so bytes that
    do not form UTF-8 become U+FFFD.
    """
    if text[0] == "`":
        return text[1:-1].replace("\r", "")
    body = text[1:-1]
    if "\\" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        v, is_byte, i = _unquote_char(body, i, '"')
        if is_byte:
            out.append(v)
        else:
            out += chr(v).encode("utf-8", "surrogatepass")
    return out.decode("utf-8", "replace")


# =========================================================================================
# Builtin functions


def _index_arg(ix: Any, cap: int) -> int:
    if ix is _NO_VALUE or ix is None:
        raise _Fail("cannot index slice/array with nil")
    if not isinstance(ix, int) or isinstance(ix, bool):
        raise _Fail(f"cannot index slice/array with type {_go_type(ix)}")
    if ix < 0 or ix > cap:
        raise _Fail(f"index out of range: {ix}")
    return int(ix)


def _map_zero(m: Mapping[Any, Any]) -> Any:
    """The zero value of a map's element type, guessed from an element.

    ``index`` of a missing key gives the element type's zero value: ``""`` for
    CoreDNS's ``.Group`` (a ``map[string]string``).
    """
    for v in m.values():
        if isinstance(v, bool):
            return False
        if isinstance(v, str):
            return ""
        if isinstance(v, int):
            return 0
        if isinstance(v, float):
            return 0.0
        break
    return _NO_VALUE


def _b_index(item: Any, *indexes: Any) -> Any:
    """``index x 1 2`` is ``x[1][2]``; maps give the zero value for a missing key."""
    if item is _NO_VALUE or item is None:
        raise _Fail("index of untyped nil")
    for ix in indexes:
        t = type(item)
        if (t is list or t is tuple) and type(ix) is int and 0 <= ix < len(item):
            item = item[ix]  # the common case, .Match by number
            continue
        if item is None or item is _NO_VALUE:
            raise _Fail("index of nil pointer")
        if isinstance(item, Mapping):
            if ix is _NO_VALUE or ix is None:
                raise _Fail(f"value is nil; should be of type {_elem_type(item.keys())}")
            try:
                item = item[ix]
            except KeyError:
                keys = iter(item)
                first = next(keys, _NO_VALUE)
                if first is not _NO_VALUE and type(first) is not type(ix):
                    raise _Fail(
                        f"value has type {_go_type(ix)}; should be {_go_type(first)}"
                    ) from None
                item = _map_zero(item)
            except TypeError:
                raise _Fail(
                    f"value has type {_go_type(ix)}; should be {_elem_type(item.keys())}"
                ) from None
        elif isinstance(item, (str, bytes, bytearray)):
            b = item.encode("utf-8") if isinstance(item, str) else item
            x = _index_arg(ix, len(b))
            if x == len(b):
                # Go's bounds check lets index == len through to reflect, which panics.
                raise _Fail(
                    "reflect: string index out of range"
                    if isinstance(item, str)
                    else "reflect: slice index out of range"
                )
            item = b[x]
        elif isinstance(item, Sequence):
            x = _index_arg(ix, len(item))
            if x == len(item):
                raise _Fail("reflect: slice index out of range")
            item = item[x]
        else:
            raise _Fail(f"can't index item of type {_go_type(item)}")
    return item


def _b_slice(item: Any, *indexes: Any) -> Any:
    """``slice x 1 2`` is ``x[1:2]``; strings are sliced by bytes, as in Go."""
    if item is _NO_VALUE or item is None:
        raise _Fail("slice of untyped nil")
    if len(indexes) > 3:
        raise _Fail(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _Fail("cannot 3-index slice a string")
        seq: Any = item.encode("utf-8")
    elif isinstance(item, (list, tuple, bytes, bytearray)):
        seq = item
    else:
        raise _Fail(f"can't slice item of type {_go_type(item)}")
    idx = [0, len(seq), len(seq)]
    for i, ix in enumerate(indexes):
        idx[i] = _index_arg(ix, len(seq))
    if idx[0] > idx[1]:
        raise _Fail(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise _Fail(f"invalid slice index: {idx[1]} > {idx[2]}")
    result = seq[idx[0] : idx[1]]
    return result.decode("utf-8", "replace") if isinstance(item, str) else result


def _b_len(item: Any) -> int:
    """``len``: bytes of a string, elements of a list or map."""
    if item is _NO_VALUE:
        # Go reaches reflect with an invalid value here and reports its panic.
        raise _Fail("reflect: call of reflect.Value.Type on zero Value")
    if item is None:
        raise _Fail("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8"))
    if isinstance(item, (bytes, bytearray, Mapping, Sequence, set, frozenset)):
        return len(item)
    raise _Fail(f"len of type {_go_type(item)}")


def _b_not(v: Any) -> bool:
    return not _truth(v)


def _basic_kind(v: Any) -> str | None:
    """The comparison kind of a value (Go's basicKind), None for anything else."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    return None


def _is_nil(v: Any) -> bool:
    return v is None or v is _NO_VALUE


def _b_eq(arg1: Any, *args: Any) -> bool:
    """``eq a b c`` is ``a == b || a == c``; comparing different kinds is an error."""
    if not args:
        raise _Fail("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in args:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if not _is_nil(arg1) and not _is_nil(arg):
                raise _Fail(
                    f"incompatible types for comparison: {_go_type(arg1)} and {_go_type(arg)}"
                )
            truth = False
        elif k1 is not None:
            truth = arg1 == arg
        elif _is_nil(arg1) or _is_nil(arg):
            truth = _is_nil(arg1) and _is_nil(arg)
        elif isinstance(arg, (list, dict, set, bytearray)) or isinstance(
            arg1, (list, dict, set, bytearray)
        ):
            raise _Fail(f"non-comparable type {_fmt(arg, 'v', _PLAIN)}: {_go_type(arg)}")
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def _b_ne(arg1: Any, arg2: Any) -> bool:
    return not _b_eq(arg1, arg2)


def _b_lt(arg1: Any, arg2: Any) -> bool:
    k1 = _basic_kind(arg1)
    if k1 is None:
        raise _Fail("invalid type for comparison")
    k2 = _basic_kind(arg2)
    if k2 is None:
        raise _Fail("invalid type for comparison")
    if k1 != k2:
        raise _Fail(f"incompatible types for comparison: {_go_type(arg1)} and {_go_type(arg2)}")
    if k1 in ("bool", "complex"):
        raise _Fail("invalid type for comparison")
    return arg1 < arg2  # type: ignore[no-any-return]


def _b_le(arg1: Any, arg2: Any) -> bool:
    return _b_lt(arg1, arg2) or _b_eq(arg1, arg2)


def _b_gt(arg1: Any, arg2: Any) -> bool:
    return not _b_le(arg1, arg2)


def _b_ge(arg1: Any, arg2: Any) -> bool:
    return not _b_lt(arg1, arg2)


def _eval_args(args: Sequence[Any]) -> str:
    """The text of ``html``/``js``/``urlquery`` arguments (Go's evalArgs)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if a is None else a for a in args])


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML_RE = re.compile("[\0\"'&<>]")


def _b_html(*args: Any) -> str:
    return _HTML_RE.sub(lambda m: _HTML[m.group()], _eval_args(args))


_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def _b_js(*args: Any) -> str:
    out = []
    for c in _eval_args(args):
        if c in _JS:
            out.append(_JS[c])
        elif c < " ":
            out.append(f"\\u{ord(c):04X}")
        elif c >= "\x80" and not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _b_urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(args), safe="")


def _b_print(*args: Any) -> str:
    return _sprint(args)


def _b_println(*args: Any) -> str:
    return _sprintln(args)


def _b_printf(format: str, *args: Any) -> str:
    return _sprintf(format, args)


def _b_call(callee: str, fn: Any, *args: Any) -> Any:
    """``call .F a b`` calls the function value ``.F`` with ``a b``."""
    if fn is _NO_VALUE or fn is None:
        raise _Fail("call of nil")
    if not callable(fn):
        raise _Fail(f"non-function {callee} of type {_go_type(fn)}")
    sig = _signature(fn)
    n = len(args)
    if sig.variadic is not None and n < sig.min:
        raise _Fail(f"wrong number of args for {callee}: got {n} want at least {sig.min}")
    if sig.variadic is None and not sig.min <= n <= len(sig.fixed):
        raise _Fail(f"wrong number of args for {callee}: got {n} want {len(sig.fixed)}")
    conv = []
    for i, a in enumerate(args):
        try:
            conv.append(_convert(a, sig.code_at(i)))
        except _Fail as e:
            raise _Fail(f"arg {i}: {e.msg}") from None
    return fn(*conv)


class _Func:
    """A template function: its implementation and parameter codes."""

    __slots__ = ("impl", "name", "sig", "special")

    def __init__(
        self, name: str, impl: Callable[..., Any] | None, sig: _Sig, special: str | None = None
    ) -> None:
        self.name = name
        self.impl = impl
        self.sig = sig
        self.special = special


_BUILTINS: dict[str, _Func] = {
    "and": _Func("and", None, _Sig((_VALUE,), _VALUE), "and"),
    "or": _Func("or", None, _Sig((_VALUE,), _VALUE), "or"),
    "not": _Func("not", _b_not, _Sig((_VALUE,))),
    "len": _Func("len", _b_len, _Sig((_VALUE,))),
    "index": _Func("index", _b_index, _Sig((_VALUE,), _VALUE)),
    "slice": _Func("slice", _b_slice, _Sig((_VALUE,), _VALUE)),
    "call": _Func("call", _b_call, _Sig((_VALUE,), _VALUE), "call"),
    "eq": _Func("eq", _b_eq, _Sig((_VALUE,), _VALUE)),
    "ne": _Func("ne", _b_ne, _Sig((_VALUE, _VALUE))),
    "lt": _Func("lt", _b_lt, _Sig((_VALUE, _VALUE))),
    "le": _Func("le", _b_le, _Sig((_VALUE, _VALUE))),
    "gt": _Func("gt", _b_gt, _Sig((_VALUE, _VALUE))),
    "ge": _Func("ge", _b_ge, _Sig((_VALUE, _VALUE))),
    "print": _Func("print", _b_print, _Sig((), _ANY)),
    "println": _Func("println", _b_println, _Sig((), _ANY)),
    "printf": _Func("printf", _b_printf, _Sig(("string",), _ANY)),
    "html": _Func("html", _b_html, _Sig((), _ANY)),
    "js": _Func("js", _b_js, _Sig((), _ANY)),
    "urlquery": _Func("urlquery", _b_urlquery, _Sig((), _ANY)),
}

# Words Go's lexer treats as keywords; they can never name a function.
_KEYWORDS = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}
)
_IDENT_RE = re.compile(r"[^\W\d]\w*\Z")


# =========================================================================================
# Parsing


class _AlwaysLexDelimiters(PostLex):
    """Let the lexer see ``{{end}}``/``{{else}}`` anywhere, so a stray one is reported
    as such instead of as whatever the text around it happens to lex as."""

    always_accept = ("LD_END", "LD_ELSE", "LD_ELSE_IF", "LD_ELSE_WITH")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = Path(__file__).with_name("gotemplate.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_AlwaysLexDelimiters(),
        maybe_placeholders=True,
    )


def compile_template(
    text: str, name: str = "answer", funcs: Mapping[str, Callable[..., Any]] | None = None
) -> Template:
    """Parse ``text`` once into a :class:`Template`.

    ``name`` appears in error messages (CoreDNS names its templates ``answer``,
    ``additional`` and ``authority``). ``funcs`` adds functions to Go's builtins (and
    may replace them), e.g. :data:`COREDNS_FUNCS`; each is a Python callable whose
    positional parameters are the template arguments (annotate them ``str``/``int``/
    ``float``/``bool`` to get Go's type checks) and whose exceptions become
    ``error calling NAME: ...`` execution errors.

    Raises :class:`TemplateSyntaxError` for text Go would refuse to parse, including
    calls of undefined functions and undefined variables. Errors that Go only finds
    when executing (wrong argument counts, unknown fields) are left for
    :meth:`Template.execute`, so the same templates compile here and in CoreDNS.
    """
    table = dict(_BUILTINS)
    for fname, fn in (funcs or {}).items():
        if not isinstance(fname, str) or not _IDENT_RE.match(fname):
            raise ValueError(f"function name {fname!r} is not a valid identifier")
        if not callable(fn):
            raise ValueError(f"value for {fname} not a function")
        table[fname] = _Func(fname, fn, _signature(fn))
    try:
        tree = _parser().parse(text)
        return _Compiler(text, name, table).compile(tree)
    except UnexpectedInput as e:
        raise _syntax_error(text, name, e) from None
    except RecursionError:
        # Parentheses nested hundreds deep; Go stops at its own limit with this message.
        raise _make_syntax_error(text, name, 0, "max expression depth exceeded") from None


class Template:
    """A compiled template: a tree of small closures, ready to execute."""

    __slots__ = ("_nslots", "_run", "name", "root_string", "text")

    def __init__(
        self,
        name: str,
        text: str,
        run: Callable[[Any, list[Any], list[str]], None],
        nslots: int,
        root_string: str = "",
    ) -> None:
        #: The name given to :func:`compile_template` (used in error messages).
        self.name = name
        #: The source text.
        self.text = text
        #: Go's ``Tree.Root.String()``: the parse tree printed back, e.g.
        #: ``{{.Name}} 60 IN A {{index .Match 1}}`` (CoreDNS labels metrics with it).
        self.root_string = root_string
        self._run = run
        self._nslots = nslots

    def execute(self, data: Any) -> str:
        """Render the template with ``data`` as dot (and ``$``).

        Raises :class:`TemplateExecError` where Go's ``Execute`` returns an error. All
        state lives in the call, so one template may be executed from several threads.
        """
        if data is None:
            data = _NO_VALUE  # Go: executing with nil data gives an invalid dot
        out: list[str] = []
        slots = [data]
        if self._nslots > 1:
            slots.extend([_UNSET] * (self._nslots - 1))
        try:
            self._run(data, slots, out)
        except _Fail as e:  # an error no node claimed; Go's form without a location
            raise TemplateExecError(
                f"template: {self.name}: {e.msg}",
                name=self.name,
                line=0,
                column=0,
                context="",
                description=e.msg,
            ) from None
        return "".join(out)

    def __repr__(self) -> str:
        return f"<Template {self.name!r} {self.text!r}>"


# -----------------------------------------------------------------------------------------
# Syntax errors: lark's exceptions in Go's words


def _line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and 0-based byte column of a character offset (Go's counting)."""
    line = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    return line, len(text[start:pos].encode("utf-8"))


def _make_syntax_error(text: str, name: str, pos: int, description: str) -> TemplateSyntaxError:
    pos = max(0, min(pos, len(text)))
    line, col = _line_col(text, pos)
    start = text.rfind("\n", 0, pos) + 1
    stop = text.find("\n", pos)
    src = text[start : len(text) if stop < 0 else stop]
    excerpt = f"{src}\n{' ' * (pos - start)}^"
    return TemplateSyntaxError(
        name=name, line=line, column=col, description=description, excerpt=excerpt
    )


_ACTION_KEYWORD_RE = re.compile(
    r"\{\{(?:-[ \t\r\n])?[ \t\r\n]*(else[ \t\r\n]+if|else[ \t\r\n]+with|if|range|with|else|end|break|continue)(?!\w)"
)
_CONTEXTS = {"else if": "if", "else with": "with", "break": "{{break}}", "continue": "{{continue}}"}


_COMMENT_START_RE = re.compile(r"\{\{(?:-[ \t\r\n])?/\*")


def _action_start(text: str, pos: int) -> int:
    return text.rfind("{{", 0, pos + 1)


def _action_context(text: str, pos: int) -> str:
    """Go's name for the construct being parsed at ``pos`` (``command``, ``if``...)."""
    start = _action_start(text, pos)
    if start < 0:
        return "input"
    depth = 0
    i = start + 2
    while i < pos:
        c = text[i]
        if c in "\"'`":
            close = text.find(c, i + 1) if c == "`" else _closing_quote(text, i)
            if close < 0 or close >= pos:
                break
            i = close
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    if depth > 0:
        return "parenthesized pipeline"
    m = _ACTION_KEYWORD_RE.match(text, start)
    if not m:
        return "command"
    kw = re.sub(r"[ \t\r\n]+", " ", m.group(1))
    return _CONTEXTS.get(kw, kw)


def _closing_quote(text: str, i: int) -> int:
    q = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == q or text[i] == "\n":
            return i
        i += 1
    return -1


_TOKENISH_RE = re.compile(r"""[ \t\r\n]*([.$]?\w+(?:\.\w+)*|"(?:[^"\\\n]|\\.)*"?|\S)""")
_OPERAND_TOKENS = frozenset(
    {
        "FIELD",
        "VARIABLE",
        "IDENT",
        "DOT",
        "NIL",
        "TRUE",
        "FALSE",
        "NUMBER",
        "STRING",
        "RAW_STRING",
        "CHAR",
        "LPAR",
    }
)


def _describe(value: str) -> str:
    """A token as Go's parser names it in ``unexpected X``: quoted, at most 10 runes."""
    if len(value) > 10:
        return _quote(value[:10]) + "..."
    return _quote(value)


def _unicode_desc(c: str) -> str:
    """Go's ``%#U``: ``U+0023 '#'``."""
    o = ord(c)
    return f"U+{o:04X} '{c}'" if c.isprintable() else f"U+{o:04X}"


def _lexer_error(text: str, name: str, pos: int) -> TemplateSyntaxError:
    """Go's lexer errors, for text lark's lexer could not match at ``pos``."""
    c = text[pos] if pos < len(text) else ""
    start = _action_start(text, pos)
    extra = ""
    comment = _COMMENT_START_RE.match(text, start) if start >= 0 else None
    if comment and pos <= comment.end():
        # Reported where the comment starts, as Go's lexer does.
        msg = (
            "comment ends before closing delimiter" if "*/" in text[start:] else "unclosed comment"
        )
        pos = start
    elif c == '"':
        msg = "unterminated quoted string"
    elif c == "`":
        msg = "unterminated raw quoted string"
    elif c == "'":
        msg = "unterminated character constant"
    elif re.match(r"[+-]?\.?\d", text[pos:]):
        m = re.match(r"[+-]?[\w.]*", text[pos:])
        assert m is not None
        msg = f"bad number syntax: {_quote(m.group())}"
    elif pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
        msg = f"bad character {_unicode_desc(c)}"
    elif " " < c < "\x7f":
        where = (
            "operand"
            if text[:pos].rstrip()[-1:] not in ("{", "(", "|", "=", "")
            else _action_context(text, pos)
        )
        msg = f"unexpected {_describe(c)} in {where}"
    else:
        msg = f"unrecognized character in action: {_unicode_desc(c)}"
    if start >= 0 and text.count("\n", start, pos):
        extra = f" in action started at {name}:{text.count(chr(10), 0, start) + 1}"
    return _make_syntax_error(text, name, pos, msg + extra)


def _syntax_error(text: str, name: str, e: UnexpectedInput) -> TemplateSyntaxError:
    if isinstance(e, UnexpectedCharacters):
        return _lexer_error(text, name, e.pos_in_stream or 0)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        expected = set(getattr(e, "expected", ()) or ())
        if expected & {"TEXT", "LD", "COMMENT", "LD_END", "LD_ELSE", "LD_ELSE_IF", "LD_ELSE_WITH"}:
            return _make_syntax_error(
                text, name, len(text), "unexpected EOF"
            )  # a block without {{end}}
        start = _action_start(text, len(text))
        msg = "unclosed action"
        if start >= 0 and "\n" in text[start:]:
            msg += f" started at {name}:{text.count(chr(10), 0, start) + 1}"
        return _make_syntax_error(text, name, len(text), msg)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    pos = tok.start_pos or 0
    kind = tok.type
    value = str(tok).strip(" \t\r\n")
    expected = set(e.expected or ())
    after_comma = text[:pos].rstrip(" \t\r\n").endswith(",") and "FIELD" not in expected
    if (
        after_comma and "VARIABLE" in expected and kind not in ("VARIABLE", "COMMA", "RD")
    ):  # `range $k, .`
        context = _action_context(text, pos)
        msg = (
            "range can only initialize variables"
            if context == "range"
            else f"too many declarations in {context}"
        )
        return _make_syntax_error(text, name, pos, msg)
    if kind == "TEXT":  # the contextual lexer failed and lark retried with every terminal
        return _lexer_error(text, name, pos)
    if kind == "LD_END":
        return _make_syntax_error(
            text, name, pos + len(str(tok)) - len(value), "unexpected {{end}}"
        )
    if kind.startswith("LD_ELSE"):
        return _make_syntax_error(
            text, name, pos + len(str(tok)) - len(value), "unexpected {{else}}"
        )
    pos += len(str(tok)) - len(str(tok).lstrip(" \t\r\n"))
    if kind == "_WS":  # what follows the space is the unexpected thing
        m = _TOKENISH_RE.match(text, pos)
        value = m.group(1) if m else ""
        kind = "FIELD"
    context = _action_context(text, pos)
    before = text[:pos].rstrip(" \t\r\n")
    if kind == "RD" and "RD" not in expected and "RPAR" in expected:
        msg = "unclosed left paren"
    elif kind in ("RD", "RPAR") and expected & {"FIELD", "VARIABLE"}:
        msg = f"missing value for {context}"
    elif kind == "RPAR" and "RPAR" not in expected:
        msg = "unexpected right paren"
    elif kind == "COMMA":  # `$a, $b, $c :=`
        msg = f"too many declarations in {context}"
    elif kind in _OPERAND_TOKENS and before == text[:pos] and not before.endswith(("{{", "(", "|")):
        msg = f"unexpected {_describe(value)} in operand"  # no space after the previous operand
    else:
        if kind.startswith("LD") or kind == "COMMENT":
            value = "{"
        elif kind == "RD":
            value = "}}"
        msg = f"unexpected {_describe(value)} in {context}"
    return _make_syntax_error(text, name, pos, msg)


# =========================================================================================
# Compiling: the parse tree becomes closures
#
# Writers have the signature (dot, slots, out) and append text to `out`. Evaluators
# (operands, commands, pipelines) have (dot, slots, final=_NOFINAL) and return a value,
# `final` being the previous command's value in a pipeline; plain values ignore it, so
# a single-command pipeline is just its command and `.Name` is one closure deep.
#
# Variables live in `slots`, a list made per execution: $ is slot 0, every declaration
# in the text gets its own slot, and a reference is resolved to its slot at compile
# time (Go resolves them by name on a stack at run time; lexical scoping makes the two
# agree). Slots declared inside if/with/range are reset when the block ends, as Go pops
# its stack, so a variable used outside the branch that set it is still an error.

Writer = Callable[[Any, list[Any], list[str]], None]
Eval = Callable[..., Any]
Command = Eval


def _noop(dot: Any, slots: list[Any], out: list[str]) -> None:
    pass


class _Where:
    """Where an execution error happens: Go's ``NAME:LINE:COL`` and node text."""

    __slots__ = ("column", "context", "line", "name", "prefix")

    def __init__(self, name: str, line: int, column: int, context: str) -> None:
        self.name = name
        self.line = line
        self.column = column
        self.context = context
        self.prefix = f'template: {name}:{line}:{column}: executing "{name}" at <{context}>: '

    def error(self, msg: str) -> TemplateExecError:
        return TemplateExecError(
            self.prefix + msg,
            name=self.name,
            line=self.line,
            column=self.column,
            context=self.context,
            description=msg,
        )


def _raising(where: _Where, msg: str) -> Eval:
    """A writer/evaluator/command that fails with ``msg`` when it runs."""

    def fail(*_: Any) -> Any:
        raise where.error(msg)

    return fail


def _const(value: Any) -> Eval:
    def ev(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
        return value

    return ev


class _Lit:
    """A literal argument: Go converts it to the parameter type at the call."""

    __slots__ = ("float_value", "int_value", "kind", "text", "value", "where")

    def __init__(
        self,
        kind: str,
        text: str,
        value: Any,
        where: _Where,
        int_value: int | None = None,
        float_value: float | None = None,
    ) -> None:
        self.kind = kind  # "string", "number", "bool", "nil"
        self.text = text
        self.value = value  # the untyped ("ideal") value; _Fail if it has none
        self.where = where
        self.int_value = int_value
        self.float_value = float_value

    def for_code(self, code: str) -> Any:
        """The literal as an argument of a parameter (Go's evalArg); raises _Fail."""
        if self.kind == "nil":
            if code in (_VALUE, _ANY):
                return None
            raise _Fail(f"cannot assign nil to {code}")
        if code in (_VALUE, _ANY):
            if isinstance(self.value, _Fail):
                raise self.value
            return self.value
        if code == "string":
            if self.kind == "string":
                return self.value
            raise _Fail(f"expected string; found {self.text}")
        if code == "bool":
            if self.kind == "bool":
                return self.value
            raise _Fail(f"expected bool; found {self.text}")
        if code == "int":
            if self.int_value is not None:
                return self.int_value
            raise _Fail(f"expected integer; found {self.text}")
        if code == "float64":
            if self.float_value is not None:
                return self.float_value
            raise _Fail(f"expected float; found {self.text}")
        return self.value  # pragma: no cover


# One compiled operand: its value evaluator, the literal (if it is one) and its location.
_Operand = tuple[Eval, "_Lit | None", _Where]


def _arg_value(op: _Operand, code: str, dot: Any, slots: list[Any]) -> Any:
    """Evaluate an argument for a parameter known only at run time (methods)."""
    ev, lit, where = op
    try:
        if lit is not None:
            return lit.for_code(code)
        return _convert(ev(dot, slots), code)
    except _Fail as e:
        raise where.error(e.msg) from None


def _call_field(
    recv: Any, name: str, ops: list[_Operand], dot: Any, slots: list[Any], final: Any
) -> Any:
    """``recv.Name arg...`` (and/or a piped-in value): only methods take arguments."""
    kind = _field_kind(type(recv))
    if recv is _NO_VALUE:
        return _NO_VALUE
    if recv is None:
        raise _Fail(f"nil pointer evaluating interface {{}}.{name}")
    if kind == _MAP:
        raise _Fail(f"{name} is not a method but has arguments")
    attr = _attribute(recv, name)
    if not _is_method(attr, recv):
        raise _Fail(f"{name} has arguments but cannot be invoked as function")
    sig = _signature(attr)
    total = len(ops) + (final is not _NOFINAL)
    err = sig.arity_error(name, len(ops), total)
    if err:
        raise _Fail(err)
    args = [_arg_value(op, sig.code_at(i), dot, slots) for i, op in enumerate(ops)]
    if final is not _NOFINAL:
        args.append(_convert(final, sig.code_at(total - 1)))
    try:
        return attr(*args)
    except TemplateError:
        raise
    except Exception as e:
        raise _Fail(f"error calling {name}: {e}") from None


def _field_eval(base: Eval, names: list[str], where: _Where) -> Eval:
    """``base.A.B`` with no arguments."""
    if len(names) == 1:
        (n,) = names

        def ev1(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
            r = base(dot, slots)
            if type(r) is dict:
                return r.get(n, _NO_VALUE)
            try:
                return _get_field(r, n)
            except _Fail as e:
                raise where.error(e.msg) from None

        return ev1

    def ev(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
        r = base(dot, slots)
        try:
            for n in names:
                r = _get_field(r, n)
            return r
        except _Fail as e:
            raise where.error(e.msg) from None

    return ev


def _dot(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
    return dot


def _dot_field(name: str, where: _Where) -> Eval:
    """``.Name``: the most common operand, kept short."""

    def ev(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
        if type(dot) is dict:
            return dot.get(name, _NO_VALUE)
        try:
            return _get_field(dot, name)
        except _Fail as e:
            raise where.error(e.msg) from None

    return ev


def _slot_eval(slot: int, var: str, where: _Where) -> Eval:
    def ev(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
        v = slots[slot]
        if v is _UNSET:
            raise where.error(f"undefined variable: {var}")
        return v

    return ev


# Literal operands: Go refuses them as a later stage of a pipeline (`x | "y"`).
_LITERAL_TOKENS = frozenset(
    {"TRUE", "FALSE", "DOT", "NIL", "NUMBER", "CHAR", "STRING", "RAW_STRING"}
)

_BLOCK_WORDS = {
    "if_block": "if",
    "else_if": "if",
    "with_block": "with",
    "else_with": "with",
    "range_block": "range",
}


class _Compiler:
    def __init__(self, text: str, name: str, funcs: dict[str, _Func]) -> None:
        self.text = text
        self.name = name
        self.funcs = funcs
        self.scope: list[tuple[str, int]] = [("$", 0)]  # visible variables, innermost last
        self.pending: set[str] = set()  # being declared by the current pipeline
        self.nslots = 1
        self.range_depth = 0

    # -- helpers ---------------------------------------------------------------------------

    def error(self, pos: int, msg: str) -> TemplateSyntaxError:
        return _make_syntax_error(self.text, self.name, pos, msg)

    def where(self, pos: int, context: str) -> _Where:
        line, col = _line_col(self.text, pos)
        return _Where(self.name, line, col, context)

    @staticmethod
    def pos(node: Token | Tree[Any]) -> int:
        """Where a node starts (Go's Pos): its first token, leading spaces skipped."""
        while isinstance(node, Tree):
            node = next(c for c in node.children if c is not None)
        s = str(node)
        return (node.start_pos or 0) + len(s) - len(s.lstrip(" \t\r\n"))

    def string(self, node: Token | Tree[Any]) -> str:
        """Go's ``Node.String()`` of an operand, command or pipeline."""
        if isinstance(node, Token):
            return str(node)
        if node.data == "operand":
            term, chain = node.children
            s = self.string(term)
            return s + str(chain) if chain is not None else s
        if node.data == "paren":
            return "(" + self.string(node.children[1]) + ")"
        if node.data == "command":
            return " ".join(self.string(c) for c in node.children)
        if node.data == "pipeline":
            decl = node.children[0]
            cmds = " | ".join(self.string(c) for c in node.children[1:] if isinstance(c, Tree))
            if decl is None:
                return cmds
            names = [str(t) for t in decl.children[:3:2] if t is not None]
            return ", ".join(names) + " := " + cmds  # Go prints := for assignments too
        raise AssertionError(node.data)  # pragma: no cover

    def new_slot(self) -> int:
        self.nslots += 1
        return self.nslots - 1

    def lookup(self, var: str) -> int | None:
        for n, slot in reversed(self.scope):
            if n == var:
                return slot
        return None

    @staticmethod
    def resetter(lo: int, hi: int) -> Callable[[list[Any]], None] | None:
        """Forget the variables declared in slots ``lo..hi`` (Go pops them)."""
        if lo == hi:
            return None

        def reset(slots: list[Any]) -> None:
            slots[lo:hi] = [_UNSET] * (hi - lo)

        return reset

    # -- structure -------------------------------------------------------------------------

    def compile(self, tree: Tree[Any]) -> Template:
        body = tree.children[0]
        run = self.body(body)
        return Template(self.name, self.text, run, self.nslots, self.tree_string(body))

    def tree_string(self, node: Tree[Any]) -> str:
        """Go's ``Tree.Root.String()``: the parsed template printed back."""
        kind = node.data
        if kind == "body":
            return "".join(self.tree_string(c) for c in node.children)
        if kind == "text":
            return str(node.children[0])
        if kind == "comment":
            return ""  # Go keeps comments only when asked to (CoreDNS does not)
        if kind == "action":
            return "{{" + self.string(node.children[1]) + "}}"
        if kind in ("break_", "continue_"):
            return "{{" + kind[:-1] + "}}"
        if kind == "else_":
            return self.tree_string(node.children[2])
        # if/with/range, and else-if/else-with, which Go stores as a nested if/with.
        _ld, pipe, _rd, body, els = node.children[:5]
        s = "{{" + _BLOCK_WORDS[kind] + " " + self.string(pipe) + "}}" + self.tree_string(body)
        if els is not None:
            s += "{{else}}" + self.tree_string(els)
        return s + "{{end}}"

    def body(self, tree: Tree[Any]) -> Writer:
        writers = [w for w in (self.item(c) for c in tree.children) if w is not None]
        # Merge neighbouring texts (around comments, say) into one write.
        merged: list[Writer] = []
        texts: list[str] = []
        for w in writers:
            t = getattr(w, "text", None)
            if t is not None:
                texts.append(t)
                continue
            if texts:
                merged.append(self.text_writer("".join(texts)))
                texts = []
            merged.append(w)
        if texts:
            merged.append(self.text_writer("".join(texts)))
        if not merged:
            return _noop
        if len(merged) == 1:
            return merged[0]
        ws = tuple(merged)

        def run(dot: Any, slots: list[Any], out: list[str]) -> None:
            for w in ws:
                w(dot, slots, out)

        return run

    @staticmethod
    def text_writer(s: str) -> Writer:
        def w(dot: Any, slots: list[Any], out: list[str]) -> None:
            out.append(s)

        w.text = s  # type: ignore[attr-defined]
        return w

    def item(self, tree: Tree[Any]) -> Writer | None:
        kind = tree.data
        if kind == "text":
            return self.text_writer(str(tree.children[0]))
        if kind == "comment":
            return None
        if kind == "action":
            return self.action(tree)
        if kind in ("if_block", "with_block"):
            _ld, pipe, _rd, body, els = tree.children[:5]
            return self.if_or_with(pipe, body, els, with_=kind == "with_block")
        if kind == "range_block":
            return self.range_(tree)
        if kind in ("break_", "continue_"):
            word = kind[:-1]
            if self.range_depth == 0:
                raise self.error(self.pos(tree), f"{{{{{word}}}}} outside {{{{range}}}}")
            exc = _Break if word == "break" else _Continue

            def jump(dot: Any, slots: list[Any], out: list[str]) -> None:
                raise exc

            return jump
        raise AssertionError(kind)  # pragma: no cover

    def action(self, tree: Tree[Any]) -> Writer:
        _ld, pipe, _rd = tree.children
        ev, declares = self.pipeline(pipe, "command")
        if declares:  # {{ $x := ... }} prints nothing

            def assign(dot: Any, slots: list[Any], out: list[str]) -> None:
                ev(dot, slots)

            return assign
        where = self.where(self.pos(pipe), "{{" + self.string(pipe) + "}}")

        def write(dot: Any, slots: list[Any], out: list[str]) -> None:
            v = ev(dot, slots)
            if type(v) is str:
                out.append(v)
            else:
                try:
                    out.append(_print_value(v))
                except _Fail as e:
                    raise where.error(e.msg) from None

        return write

    def if_or_with(
        self, pipe: Tree[Any], body: Tree[Any], els: Tree[Any] | None, with_: bool
    ) -> Writer:
        """``{{if}}``/``{{with}}`` and their ``else`` chains (an ``else if`` nests)."""
        scope_mark, slot_mark = len(self.scope), self.nslots
        cond, _ = self.pipeline(pipe, "with" if with_ else "if")
        then = self.body(body)
        other: Writer | None = None
        if els is not None:
            if els.data == "else_":
                other = self.body(els.children[2])
            else:  # else_if / else_with: a nested block sharing our {{end}}
                _ld, p2, _rd, b2, e2 = els.children
                other = self.if_or_with(p2, b2, e2, with_)
        del self.scope[scope_mark:]
        reset = self.resetter(slot_mark, self.nslots)

        if with_:

            def run(dot: Any, slots: list[Any], out: list[str]) -> None:
                v = cond(dot, slots)
                if _truth(v):
                    then(v, slots, out)
                elif other is not None:
                    other(dot, slots, out)
                if reset is not None:
                    reset(slots)

        else:

            def run(dot: Any, slots: list[Any], out: list[str]) -> None:
                if _truth(cond(dot, slots)):
                    then(dot, slots, out)
                elif other is not None:
                    other(dot, slots, out)
                if reset is not None:
                    reset(slots)

        return run

    def range_(self, tree: Tree[Any]) -> Writer:
        _ld, pipe, _rd, body, els = tree.children[:5]
        scope_mark, slot_mark = len(self.scope), self.nslots
        ev, decl_slots = self.pipeline(pipe, "range")
        nvars = len(decl_slots)
        where = self.where(self.pos(pipe), self.string(pipe))
        self.range_depth += 1
        body_mark = self.nslots
        loop = self.body(body)
        body_reset = self.resetter(body_mark, self.nslots)
        self.range_depth -= 1
        other = self.body(els.children[2]) if els is not None else None
        del self.scope[scope_mark:]
        reset = self.resetter(slot_mark, self.nslots)
        s0 = decl_slots[0] if nvars else 0
        s1 = decl_slots[1] if nvars == 2 else 0

        def run(dot: Any, slots: list[Any], out: list[str]) -> None:
            val = ev(dot, slots)
            try:
                items = _range_items(val, nvars)
            except _Fail as e:
                raise where.error(e.msg) from None
            ran = False
            try:
                for key, elem in items:
                    ran = True
                    if nvars == 1:
                        slots[s0] = elem
                    elif nvars == 2:
                        slots[s0] = key
                        slots[s1] = elem
                    try:
                        loop(elem, slots, out)
                    except _Continue:
                        pass
                    if body_reset is not None:
                        body_reset(slots)
            except _Break:
                pass
            if not ran and other is not None:
                other(dot, slots, out)
            if reset is not None:
                reset(slots)

        return run

    # -- pipelines and commands ------------------------------------------------------------

    def pipeline(self, tree: Tree[Any], context: str) -> tuple[Eval, list[int]]:
        """A pipeline evaluator, and the slots of the variables it declares or assigns."""
        decl: Any
        decl, *rest = tree.children
        commands = [c for c in rest if isinstance(c, Tree)]
        for stage, cmd in enumerate(commands[1:], start=2):
            first = cmd.children[0].children[0]
            if isinstance(first, Token) and first.type in _LITERAL_TOKENS:
                raise self.error(self.pos(cmd), f"non executable command in pipeline stage {stage}")
        names: list[Token] = []
        assign = False
        outer_pending = self.pending
        if decl is not None:
            names = [t for t in decl.children[:3:2] if t is not None]
            assign = decl.children[3].type == "ASSIGN"
            for t in names:
                if "." in str(t):
                    raise self.error(
                        decl.children[3].start_pos or 0,
                        f"unexpected {_describe(str(decl.children[3]).strip())} in operand",
                    )
            if len(names) > 1 and context != "range":
                raise self.error(self.pos(decl), f"too many declarations in {context}")
            self.pending = outer_pending | {str(t) for t in names}
        try:
            cevs = [self.command(c, stage) for stage, c in enumerate(commands)]
        finally:
            self.pending = outer_pending

        ev: Eval
        if len(cevs) == 1:
            ev = cevs[0]
        else:
            chain = tuple(cevs)

            def ev(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
                v = _NOFINAL
                for c in chain:
                    v = c(dot, slots, v)
                return v

        if not names:
            return ev, []
        targets: list[int] = []
        for t in names:
            var = str(t)
            slot = self.lookup(var) if assign else None
            if slot is None:
                slot = self.new_slot()
                if assign:
                    # Go accepts `$x = ...` for an undeclared $x and fails when it runs.
                    self.scope.append((var, slot))
                    return _raising(
                        self.where(t.start_pos or 0, self.string(tree)),
                        f"undefined variable: {var}",
                    ), [slot]
            targets.append(slot)
        if not assign:
            self.scope.extend((str(t), s) for t, s in zip(names, targets, strict=True))
        if len(targets) == 1:
            (target,) = targets

            def declare(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
                v = ev(dot, slots)
                slots[target] = v
                return v

            return declare, targets
        pair = tuple(targets)

        def declare2(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
            v = ev(dot, slots)
            for s in pair:
                slots[s] = v
            return v

        return declare2, targets

    def command(self, tree: Tree[Any], stage: int) -> Command:
        first, *args = tree.children
        term: Any
        chain: Any
        term, chain = first.children
        has_final = stage > 0
        cmd_where = self.where(self.pos(tree), self.string(tree))
        if isinstance(term, Token) and term.type == "IDENT" and chain is None:
            fn = self.function(term)
            return self.call(fn, args, has_final, cmd_where, self.where(self.pos(term), str(term)))
        if isinstance(term, Token) and term.type == "FIELD":
            names = str(term)[1:].split(".")
            return self.field_command(
                _dot, names, args, has_final, self.where(self.pos(term), str(term))
            )
        if isinstance(term, Token) and term.type == "VARIABLE" and "." in str(term):
            var, *names = str(term).split(".")
            base = self.variable(var, term)
            return self.field_command(
                base, names, args, has_final, self.where(self.pos(term), str(term))
            )
        if chain is not None and (isinstance(term, Tree) or term.type == "IDENT"):
            base, _, _ = self.operand_term(term)
            names = str(chain)[1:].split(".")
            where = self.where(chain.start_pos or 0, self.string(first))
            return self.field_command(base, names, args, has_final, where)
        # A value that is not a function: a variable, (pipeline), dot or literal.
        ev, _, where = self.operand(first)
        if isinstance(term, Token) and term.type == "NIL":
            return _raising(where, "nil is not a command")
        if args or has_final:
            return _raising(where, f"can't give argument to non-function {self.string(first)}")
        return ev

    def field_command(
        self, base: Eval, names: list[str], args: list[Tree[Any]], has_final: bool, where: _Where
    ) -> Command:
        """``.A.B arg...``: the last field may be a method that takes the arguments."""
        if not args and not has_final:
            if base is _dot and len(names) == 1:
                return _dot_field(names[0], where)
            return _field_eval(base, names, where)
        *head, last = names
        ops = [self.operand(a) for a in args]

        def method(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
            r = base(dot, slots)
            try:
                for n in head:
                    r = _get_field(r, n)
                return _call_field(r, last, ops, dot, slots, final)
            except _Fail as e:
                raise where.error(e.msg) from None

        return method

    def function(self, ident: Token) -> _Func:
        name = str(ident)
        if name in _KEYWORDS:
            if name in ("define", "template", "block"):
                raise self.error(ident.start_pos or 0, f"{{{{{name}}}}} is not supported")
            raise self.error(ident.start_pos or 0, f"unexpected <{name}> in command")
        fn = self.funcs.get(name)
        if fn is None:
            raise self.error(ident.start_pos or 0, f"function {_quote(name)} not defined")
        return fn

    def call(
        self, fn: _Func, args: list[Tree[Any]], has_final: bool, where: _Where, ident_where: _Where
    ) -> Command:
        """A function call; ``where`` locates "error calling" messages (the command)."""
        total = len(args) + has_final
        err = fn.sig.arity_error(fn.name, len(args), total)
        if err:
            return _raising(ident_where, err)
        name = fn.name
        sig = fn.sig
        aevs = [self.argument(a, sig.code_at(i)) for i, a in enumerate(args)]
        fcode = sig.code_at(total - 1) if has_final else _ANY

        if fn.special in ("and", "or"):
            want = fn.special == "or"

            def and_or(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
                v = _NO_VALUE
                for a in aevs:
                    v = a(dot, slots)
                    if _truth(v) == want:
                        return v
                return final if has_final else v

            return and_or

        impl = fn.impl
        assert impl is not None
        if fn.special == "call":
            impl = functools.partial(_b_call, self.string(args[0]) if args else "value")

        def failed(e: Exception) -> TemplateExecError:
            return where.error(f"error calling {name}: {e.msg if isinstance(e, _Fail) else e}")

        # Arguments are evaluated outside the try: their errors carry their own location.
        if not has_final and len(aevs) == 2:  # index .Match 1, eq .Type "A", ...
            a0, a1 = aevs

            def call2(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
                x, y = a0(dot, slots), a1(dot, slots)
                try:
                    return impl(x, y)
                except TemplateError:
                    raise
                except Exception as e:
                    raise failed(e) from None

            return call2

        def calln(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
            values = [a(dot, slots) for a in aevs]
            if has_final:
                try:
                    values.append(_convert(final, fcode))
                except _Fail as e:
                    raise where.error(e.msg) from None
            try:
                return impl(*values)
            except TemplateError:
                raise
            except Exception as e:
                raise failed(e) from None

        return calln

    # -- operands --------------------------------------------------------------------------

    def argument(self, tree: Tree[Any], code: str) -> Eval:
        """An operand as the argument of a parameter with type ``code``."""
        ev, lit, where = self.operand(tree)
        if lit is not None:
            try:
                return _const(lit.for_code(code))
            except _Fail as e:
                return _raising(lit.where, e.msg)
        if code is _VALUE:
            return ev
        if code is _ANY:

            def any_arg(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
                v = ev(dot, slots)
                return None if v is _NO_VALUE else v

            return any_arg

        def typed(dot: Any, slots: list[Any], final: Any = _NOFINAL) -> Any:
            try:
                return _convert(ev(dot, slots), code)
            except _Fail as e:
                raise where.error(e.msg) from None

        return typed

    def operand(self, tree: Tree[Any]) -> _Operand:
        """An operand's value (no arguments, nothing piped in), literal and location."""
        term: Any
        chain: Any
        term, chain = tree.children
        ev, lit, where = self.operand_term(term)
        if chain is None:
            return ev, lit, where
        if lit is not None or (isinstance(term, Token) and term.type == "DOT"):
            raise self.error(chain.start_pos or 0, f"unexpected . after term {_quote(str(term))}")
        names = str(chain)[1:].split(".")
        cwhere = self.where(chain.start_pos or 0, self.string(tree))
        return _field_eval(ev, names, cwhere), None, cwhere

    def operand_term(self, term: Token | Tree[Any]) -> _Operand:
        if isinstance(term, Tree):  # ( pipeline )
            ev, _ = self.pipeline(term.children[1], "parenthesized pipeline")
            return ev, None, self.where(self.pos(term), self.string(term))
        text = str(term)
        kind = term.type
        where = self.where(term.start_pos or 0, text)
        if kind == "FIELD":
            names = text[1:].split(".")
            if len(names) == 1:
                return _dot_field(names[0], where), None, where
            return _field_eval(_dot, names, where), None, where
        if kind == "VARIABLE":
            var, *names = text.split(".")
            base = self.variable(var, term)
            return (_field_eval(base, names, where) if names else base), None, where
        if kind == "IDENT":
            fn = self.function(term)
            return self.call(fn, [], False, where, where), None, where
        if kind == "DOT":
            return _dot, None, where
        lit = self.literal(term, where)
        value = lit.value
        if isinstance(value, _Fail):
            return _raising(where, value.msg), lit, where
        return _const(value), lit, where

    def variable(self, var: str, tok: Token) -> Eval:
        slot = self.lookup(var)
        where = self.where(tok.start_pos or 0, str(tok))
        if slot is None:
            if var in self.pending:  # `$x := $x` with no outer $x: Go fails at run time
                return _raising(where, f"undefined variable: {var}")
            raise self.error(tok.start_pos or 0, f"undefined variable {_quote(var)}")
        return _slot_eval(slot, var, where)

    def literal(self, tok: Token, where: _Where) -> _Lit:
        text = str(tok)
        kind = tok.type
        pos = tok.start_pos or 0
        if kind in ("TRUE", "FALSE"):
            return _Lit("bool", text, kind == "TRUE", where)
        if kind == "NIL":
            return _Lit("nil", text, None, where)
        if kind in ("STRING", "RAW_STRING"):
            try:
                return _Lit("string", text, _unquote(text), where)
            except ValueError:
                raise self.error(pos, "invalid syntax") from None
        if kind == "CHAR":
            try:
                v, _, end = _unquote_char(text, 1, "'")
            except (ValueError, IndexError):
                raise self.error(pos, "invalid syntax") from None
            if text[end:] != "'" or text == "''":
                raise self.error(pos, f"malformed character constant: {text}")
            return _Lit("number", text, v, where, v, float(v))
        # NUMBER: Go keeps every interpretation that parses and picks one per use.
        i = _parse_go_int(text)
        u = None if text[0] in "+-" else _parse_go_uint(text)
        f: float | None
        if i is not None:
            f = float(i)
        elif u is not None:
            f = float(u)
        else:
            f = _parse_go_float(text)
            if f is not None:
                if not any(c in text for c in ".eEpP"):
                    raise self.error(pos, f"integer overflow: {_quote(text)}")
                if math.isfinite(f) and f == int(f) and -(1 << 63) <= int(f) < 1 << 63:
                    i = int(f)
        if i is None and u is None and f is None:
            raise self.error(pos, f"illegal number syntax: {_quote(text)}")
        hex_int = text.lstrip("+-")[:2].lower() == "0x" and "p" not in text.lower()
        ideal: Any
        if f is not None and not hex_int and any(c in text for c in ".eEpP"):
            ideal = f
        elif i is not None:
            ideal = i
        else:
            ideal = _Fail(f"{text} overflows int")
        return _Lit("number", text, ideal, where, i, f)


def _parse_go_uint(text: str) -> int | None:
    try:
        return _parse_uint(text, 0, 64)
    except NumError:
        return None


def _range_items(val: Any, nvars: int) -> Iterable[tuple[Any, Any]]:
    """(key, element) pairs of a range: lists by index, maps by sorted key, ints."""
    if val is None or val is _NO_VALUE:
        return ()
    if isinstance(val, Mapping):
        return [(k, val[k]) for k in _sorted_keys(val)]
    if isinstance(val, (list, tuple)):
        return enumerate(val)
    if isinstance(val, int) and not isinstance(val, bool):
        if nvars > 1:
            raise _Fail(f"can't use {val} to iterate over more than one variable")
        return ((i, i) for i in range(val))
    if isinstance(val, (str, bytes, bytearray)) or not isinstance(val, Iterable):
        raise _Fail(f"range can't iterate over {_fmt(val, 'v', _PLAIN)}")
    return enumerate(val)
