"""Synthetic column values for the rehearsal's fill: per column type, the value of row i, unique when
a key needs it, within what a CHECK allows (IN lists, bounds, lengths, simple regular expressions).

A generator is a function from a range of row numbers to the list of those rows' values, in the
types asyncpg's binary COPY takes. Values depend only on the row number and the column (a salt),
so a child's foreign key is its parent's generator at the parent's row number, and two runs fill
the same rows. Invariant: a unique generator never repeats a value within its capacity, and says
(CannotGenerate) when the table has more rows than the type or the CHECK allows distinct values.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pglast import ast, parser

Generator = Callable[[range], list]
POOL = 1000  # distinct values a non-unique column cycles through
_BASE_TIME = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_BASE_DATE = datetime.date(2025, 1, 1)
_INT_LIMITS = {"int2": 32_767, "int4": 2_147_483_647, "int8": 9_223_372_036_854_775_807}


class CannotGenerate(Exception):
    """Values for a column cannot be made (its type, or too many rows for what it allows)."""


@dataclass
class Domain:
    """What a column's CHECK constraints allow, as far as they are understood."""

    choices: list | None = None  # col IN (...) or col = ANY (ARRAY[...])
    low: decimal.Decimal | None = None  # col >= low (or > low: low is then excluded)
    low_open: bool = False
    high: decimal.Decimal | None = None
    high_open: bool = False
    pattern: str | None = None  # col ~ 'regex'
    min_length: int = 0
    max_length: int | None = None
    understood: bool = True
    columns: set[str] = field(default_factory=set)


def check_domains(definition: str) -> dict[str, Domain]:
    """Per column, what one CHECK constraint's definition (pg_get_constraintdef) allows."""
    text = definition.strip()
    text = re.sub(r"\s+NOT VALID$", "", text)
    text = text.removeprefix("CHECK").strip()
    try:
        node = parser.parse_sql(f"SELECT {text}")[0].stmt.targetList[0].val
    except (parser.ParseError, IndexError, AttributeError):
        return {}
    domains: dict[str, Domain] = {}
    _read(node, domains)
    return domains


def _read(node, domains: dict[str, Domain]) -> None:
    node = _strip(node)
    if isinstance(node, ast.BoolExpr):
        args = list(node.args or ())
        if node.boolop.name == "AND_EXPR":
            for arg in args:
                _read(arg, domains)
        elif node.boolop.name == "OR_EXPR" and args:
            # `x IS NULL OR x > 0`: the branch that says something about a value.
            chosen = next((a for a in args if not isinstance(_strip(a), ast.NullTest)), args[0])
            _read(chosen, domains)
        return
    if isinstance(node, ast.NullTest):
        return
    if isinstance(node, ast.A_Expr):
        _read_expression(node, domains)


def _read_expression(node, domains: dict[str, Domain]) -> None:
    operator = node.name[-1].sval if node.name else ""
    left, right = _strip(node.lexpr), _strip(node.rexpr)
    kind = node.kind.name
    column = _column(left)
    length_of = _length_of(left)
    if kind in ("AEXPR_IN", "AEXPR_OP_ANY") and operator == "=" and column:
        values = _constants(right)
        if values is not None:
            _domain(domains, column).choices = values
        return
    if kind == "AEXPR_BETWEEN" and column:
        low, high = (_constant(v) for v in right)
        _bound(_domain(domains, column), ">=", low)
        _bound(_domain(domains, column), "<=", high)
        return
    if kind != "AEXPR_OP":
        return
    if column is None and _column(right) and _constant(left) is not None:  # 0 < x
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(operator)
        if flipped:
            _bound(_domain(domains, _column(right)), flipped, _constant(left))
        return
    value = _constant(right)
    if column and operator == "~" and isinstance(value, str):
        _domain(domains, column).pattern = value
    elif column and operator == "=" and value is not None:
        _domain(domains, column).choices = [value]
    elif column and operator in ("<", "<=", ">", ">="):
        _bound(_domain(domains, column), operator, value)
    elif length_of and operator in ("<", "<=", ">", ">=", "=") and isinstance(value, decimal.Decimal):
        domain = _domain(domains, length_of)
        number = int(value)
        if operator in (">", ">=", "="):
            domain.min_length = number + (operator == ">")
        if operator in ("<", "<=", "="):
            domain.max_length = number - (operator == "<")
    elif column:
        _domain(domains, column).understood = operator in ("<>", "!=")


def _domain(domains: dict[str, Domain], column: str) -> Domain:
    return domains.setdefault(column, Domain())


def _bound(domain: Domain, operator: str, value) -> None:
    if not isinstance(value, decimal.Decimal):
        domain.understood = False
        return
    if operator in (">", ">="):
        domain.low, domain.low_open = value, operator == ">"
    else:
        domain.high, domain.high_open = value, operator == "<"


def _strip(node):
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _column(node) -> str | None:
    if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    return None


def _length_of(node) -> str | None:
    if isinstance(node, ast.FuncCall) and node.args and len(node.args) == 1:
        name = node.funcname[-1].sval if node.funcname else ""
        if name in ("length", "char_length", "character_length", "octet_length"):
            return _column(_strip(node.args[0]))
    return None


def _constant(node):
    node = _strip(node)
    if isinstance(node, ast.A_Const) and not node.isnull:
        value = node.val
        if isinstance(value, ast.String):
            return value.sval
        if isinstance(value, ast.Integer):
            return decimal.Decimal(value.ival)
        if isinstance(value, ast.Float):
            return decimal.Decimal(value.fval)
        if isinstance(value, ast.Boolean):
            return value.boolval
    if isinstance(node, ast.A_Expr) and node.kind.name == "AEXPR_OP" and node.name[-1].sval == "-" and not node.lexpr:
        inner = _constant(node.rexpr)
        return -inner if isinstance(inner, decimal.Decimal) else None
    return None


def _constants(node) -> list | None:
    node = _strip(node)
    items = node.elements if isinstance(node, ast.A_ArrayExpr) else node if isinstance(node, tuple | list) else None
    if items is None:
        return None
    values = [_constant(item) for item in items]
    return None if any(v is None for v in values) else values


# ---- simple regular expressions ----------------------------------------------------------------

_CLASSES = {
    "d": "0123456789",
    "w": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "s": " ",
}


def regex_alphabets(pattern: str) -> list[str] | None:
    """A regular expression of literals, classes ([A-Z0-9], \\d, .) and fixed or bounded repeats,
    anchored or not, as one alphabet per character of a shortest match; None if it is more than that."""
    positions: list[str] = []
    i, text = 0, pattern.removeprefix("^")
    text = text[:-1] if text.endswith("$") and not text.endswith("\\$") else text
    while i < len(text):
        char = text[i]
        if char == "[":
            end = text.find("]", i + 2)
            if end < 0:
                return None
            alphabet, i = _expand(text[i + 1 : end]), end + 1
            if alphabet is None:
                return None
        elif char == "\\" and i + 1 < len(text):
            alphabet, i = _CLASSES.get(text[i + 1], text[i + 1]), i + 2
        elif char == ".":
            alphabet, i = "abcdefghijklmnopqrstuvwxyz", i + 1
        elif char in "()|^$*+?{}":
            return None
        else:
            alphabet, i = char, i + 1
        repeat, i = _repeat(text, i)
        if repeat is None:
            return None
        positions += [alphabet] * repeat
    return positions


def _expand(body: str) -> str | None:
    if body.startswith("^"):
        return None
    chars, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            chars += list(_CLASSES.get(body[i + 1], body[i + 1]))
            i += 2
        elif i + 2 < len(body) and body[i + 1] == "-":
            chars += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return "".join(dict.fromkeys(chars)) or None


def _repeat(text: str, i: int) -> tuple[int | None, int]:
    if i < len(text) and text[i] in "?*":
        return 0, i + 1
    if i < len(text) and text[i] == "+":
        return 1, i + 1
    if i < len(text) and text[i] == "{":
        match = re.match(r"\{(\d+)(,\d*)?\}", text[i:])
        return (int(match.group(1)), i + match.end()) if match else (None, i)
    return 1, i


def regex_generator(alphabets: list[str], unique: bool, rows: int, salt: int) -> Generator:
    """Strings matching the alphabets: row i in mixed radix over the free positions when unique."""
    capacity = 1
    for alphabet in alphabets:
        capacity *= len(alphabet)
    if unique and rows > capacity:
        raise CannotGenerate(f"the pattern allows {capacity} distinct values, fewer than {rows} rows")

    def value(n: int) -> str:
        chars = []
        for alphabet in reversed(alphabets):
            n, digit = divmod(n, len(alphabet))
            chars.append(alphabet[digit])
        return "".join(reversed(chars))

    if unique:
        return lambda rows_: [value(i) for i in rows_]
    pool = [value((k * 7919 + salt) % capacity) for k in range(min(POOL, capacity))]
    return lambda rows_: [pool[i % len(pool)] for i in rows_]


# ---- per type ----------------------------------------------------------------------------------


def type_generator(
    base: str, unique: bool, rows: int, salt: int, name: str, domain: Domain, max_length: int | None
) -> Generator | None:
    """Values of base type `base` (pg_type.typname) for rows, or None when the type is not known."""
    if domain.choices is not None:
        if unique and rows > len(domain.choices):
            raise CannotGenerate(f"its CHECK allows {len(domain.choices)} values, fewer than {rows} rows")
        choices = [_typed(base, value) for value in domain.choices]
        return lambda rows_: [choices[i % len(choices)] for i in rows_]
    if base in ("int2", "int4", "int8", "numeric", "float4", "float8", "oid", "money"):
        return _number(base, unique, rows, domain)
    if base in ("text", "varchar", "bpchar", "name", "citext"):
        return _text(unique, rows, salt, name, domain, max_length)
    if base == "uuid":
        return lambda rows_: [f"{salt:08x}-{(i >> 48) & 0xFFFF:04x}-4000-8000-{i & 0xFFFFFFFFFFFF:012x}" for i in rows_]
    if base in ("timestamptz", "timestamp"):
        zone = _BASE_TIME if base == "timestamptz" else _BASE_TIME.replace(tzinfo=None)
        if unique:
            return lambda rows_: [zone + datetime.timedelta(seconds=i) for i in rows_]
        pool = [zone + datetime.timedelta(minutes=(k * 7919) % 525_600) for k in range(POOL)]
        return lambda rows_: [pool[i % POOL] for i in rows_]
    if base == "date":
        return lambda rows_: [_BASE_DATE + datetime.timedelta(days=i if unique else i % 3650) for i in rows_]
    if base == "bool":
        if unique and rows > 2:
            raise CannotGenerate("a boolean has 2 values")
        return lambda rows_: [i % 2 == 0 for i in rows_]
    if base in ("json", "jsonb"):
        return lambda rows_: [f'{{"n": {i if unique else i % POOL}}}' for i in rows_]
    if base in ("inet", "cidr"):
        if unique and rows > 2**24:
            raise CannotGenerate("more rows than 10.0.0.0/8 has addresses")
        mask = "/32" if base == "cidr" else ""
        return lambda rows_: [f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}{mask}" for n in _spread(rows_, unique)]
    if base == "bytea":
        return lambda rows_: [n.to_bytes(8, "big") for n in _spread(rows_, unique)]
    if base in ("time", "timetz"):
        return lambda rows_: [datetime.time((i // 3600) % 24, (i // 60) % 60, i % 60) for i in rows_]
    if base == "interval":
        return lambda rows_: [datetime.timedelta(seconds=i if unique else i % 86_400) for i in rows_]
    return None


def _spread(rows_: range, unique: bool):
    return rows_ if unique else (i % POOL for i in rows_)


def _typed(base: str, value):
    if base in ("int2", "int4", "int8", "oid"):
        return int(value)
    if base in ("float4", "float8"):
        return float(value)
    if base == "numeric":
        return decimal.Decimal(value)
    return value if not isinstance(value, decimal.Decimal) else str(value)


def _number(base: str, unique: bool, rows: int, domain: Domain) -> Generator:
    low = domain.low if domain.low is not None else decimal.Decimal(0)
    start = int(low) + 1 if domain.low_open or low != int(low) else int(low)
    start = max(start, 1) if domain.low is None else start
    high = domain.high
    limit = _INT_LIMITS.get(base)
    if limit is not None:
        high = min(high, decimal.Decimal(limit)) if high is not None else decimal.Decimal(limit)
    last = None if high is None else int(high) - (1 if domain.high_open and high == int(high) else 0)
    span = None if last is None else last - start + 1
    if span is not None and span < 1:
        raise CannotGenerate(f"its CHECK allows no value from {start}")
    if unique and span is not None and rows > span:
        raise CannotGenerate(f"its type or CHECK allows {span} distinct values, fewer than {rows} rows")
    cycle = POOL if span is None else min(POOL, span)
    convert = float if base in ("float4", "float8") else int
    if unique:
        return lambda rows_: [convert(start + i) for i in rows_]
    return lambda rows_: [convert(start + i % cycle) for i in rows_]


def _text(unique: bool, rows: int, salt: int, name: str, domain: Domain, max_length: int | None) -> Generator:
    longest = (
        min(v for v in (max_length, domain.max_length) if v is not None) if (max_length or domain.max_length) else None
    )
    if domain.pattern is not None:
        alphabets = regex_alphabets(domain.pattern)
        if alphabets is None:
            raise CannotGenerate(f"its CHECK pattern {domain.pattern!r} is more than this fill can match")
        return regex_generator(alphabets, unique, rows, salt)
    shortest = domain.min_length
    email = "email" in name

    def value(n: int) -> str:
        text = f"{name}{n}@example.com" if email else f"{name} {n}"
        if longest is not None and len(text) > longest:
            text = _base36(n)
            if len(text) > longest:
                raise CannotGenerate(f"{rows} distinct values do not fit in {longest} characters")
        return text.ljust(shortest, "x")

    if unique:
        return lambda rows_: [value(i) for i in rows_]
    pool = [value(k) for k in range(POOL)]
    return lambda rows_: [pool[i % POOL] for i in rows_]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, digit = divmod(n, 36)
        text = digits[digit] + text
        if n == 0:
            return text
