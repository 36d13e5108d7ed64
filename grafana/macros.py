"""Expand a panel's SQL the way Grafana does before it reaches PostgreSQL.

Two passes, in Grafana's order:
1. template variables, as the frontend's SQL data source interpolates them (`$var`, `${var}`,
   `${var:format}`, `[[var]]`; a multi-value or include-all variable becomes `'a','b'`, a single
   value has its quotes doubled but is not wrapped, a custom "All" value goes in verbatim);
2. the backend's macros: first the global ones (`$__interval`, `$__interval_ms`,
   `$__unixEpochFrom()`, `$__unixEpochTo()`), then the PostgreSQL engine's (`$__time`,
   `$__timeFilter`, `$__timeGroup`, …), written after grafana/grafana
   pkg/tsdb/grafana-postgresql-datasource/macros.go and sqleng/sql_engine.go.

Tests use this to run exactly the SQL Grafana would send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

ALL_VALUE = "$__all"

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
# Grafana's templateSrv variable regex: $var | [[var:fmt]] | ${var.field:fmt}
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# gtime.ParseInterval's calendar units, in UTC (no daylight saving): days and weeks are exact.
_CALENDAR_DAYS = {"d": 1, "w": 7}


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True)
class Variable:
    """A dashboard template variable's current value, as Grafana holds it."""

    value: str | Sequence[str]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None  # the variable's custom "All" value, if it has one
    options: Sequence[str] = field(default_factory=tuple)  # what "All" means without one


@dataclass(frozen=True)
class QueryContext:
    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    timescaledb: bool = False  # the data source's "TimescaleDB" switch


# --------------------------------------------------------------------------- formatting
def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, 'Z' suffix."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def go_float(value: float) -> str:
    """Go's fmt `%v` for a float64: shortest digits, exponent form from 1e+06 up or below 1e-4."""
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    text_digits = "".join(map(str, digits))
    point = len(digits) + exponent  # position of the decimal point within the digits
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text_digits[0] + ("." + text_digits[1:] if len(text_digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text_digits}"
    if point >= len(text_digits):
        return prefix + text_digits + "0" * (point - len(text_digits))
    return f"{prefix}{text_digits[:point]}.{text_digits[point:]}"


def format_interval(interval: timedelta) -> str:
    """gtime.FormatInterval: the largest whole unit, as `$__interval` shows it."""
    ms = int(interval / timedelta(milliseconds=1))
    for unit, size in (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    for unit, size in (("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def parse_interval(text: str) -> float:
    """gtime.ParseInterval in seconds: Go durations ('5m', '1h30m') and 'd'/'w' units."""
    text = text.strip("'")
    if not text:
        raise MacroError("empty interval")
    if text[-1] in _CALENDAR_DAYS and text[:-1].isdigit():
        return int(text[:-1]) * _CALENDAR_DAYS[text[-1]] * 86_400.0
    if text[-1] in "My":
        raise MacroError(f"calendar interval {text!r} has no fixed length in this expander")
    if text == "0":
        return 0.0
    parts = _GO_DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text.lstrip("+"):
        raise MacroError(f"error parsing interval {text}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


# ------------------------------------------------------------------- template variables
def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format_variable(variable: Variable) -> str:
    value = variable.value
    if value == ALL_VALUE or (isinstance(value, list | tuple) and ALL_VALUE in value):
        if variable.all_value is not None:
            return variable.all_value  # Grafana skips formatting of a custom "All" value
        value = list(variable.options)
    if isinstance(value, str):
        if variable.multi or variable.include_all:
            return _quote_literal(value)
        return value.replace("'", "''")
    return ",".join(_quote_literal(item) for item in value)


def substitute_variables(sql: str, variables: Mapping[str, Variable]) -> str:
    """Replace the dashboard's variables; unknown `$names` (macros included) stay as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        variable = variables.get(name)
        return match.group(0) if variable is None else _format_variable(variable)

    return _VARIABLE.sub(replace, sql)


# ------------------------------------------------------------------------------ macros
def _global_macros(sql: str, context: QueryContext) -> str:
    interval_ms = int(context.interval / timedelta(milliseconds=1))
    sql = sql.replace("$__interval_ms", str(interval_ms))
    sql = sql.replace("$__interval", format_interval(context.interval))
    sql = sql.replace("$__unixEpochFrom()", str(_unix(context.time_from)))
    return sql.replace("$__unixEpochTo()", str(_unix(context.time_to)))


def _unix(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def _unix_nano(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _need(name: str, args: list[str], count: int = 1) -> None:
    if len(args) < count or not args[0]:
        if count == 1:
            raise MacroError(f"missing time column argument for macro {name}")
        raise MacroError(f"macro {name} needs time column and interval and optional fill value")


def _time_group(args: list[str], context: QueryContext, *, epoch_column: bool) -> str:
    name = "__unixEpochGroup" if epoch_column else "__timeGroup"
    _need(name, args, 2)
    seconds = parse_interval(args[1])
    if epoch_column:
        return f"floor(({args[0]})/{go_float(seconds)})*{go_float(seconds)}"
    if context.timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"


def _evaluate(name: str, args: list[str], context: QueryContext) -> str:
    start, end = rfc3339_nano(context.time_from), rfc3339_nano(context.time_to)
    match name:
        case "__time":
            _need(name, args)
            return f'{args[0]} AS "time"'
        case "__timeEpoch":
            _need(name, args)
            return f'extract(epoch from {args[0]}) as "time"'
        case "__timeFilter":
            _need(name, args)
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        case "__timeFrom":
            return f"'{start}'"
        case "__timeTo":
            return f"'{end}'"
        case "__timeGroup":
            return _time_group(args, context, epoch_column=False)
        case "__timeGroupAlias":
            return _time_group(args, context, epoch_column=False) + ' AS "time"'
        case "__unixEpochFilter":
            _need(name, args)
            low, high = _unix(context.time_from), _unix(context.time_to)
            return f"{args[0]} >= {low} AND {args[0]} <= {high}"
        case "__unixEpochNanoFilter":
            _need(name, args)
            low, high = _unix_nano(context.time_from), _unix_nano(context.time_to)
            return f"{args[0]} >= {low} AND {args[0]} <= {high}"
        case "__unixEpochNanoFrom":
            return str(_unix_nano(context.time_from))
        case "__unixEpochNanoTo":
            return str(_unix_nano(context.time_to))
        case "__unixEpochGroup":
            return _time_group(args, context, epoch_column=True)
        case "__unixEpochGroupAlias":
            return _time_group(args, context, epoch_column=True) + ' AS "time"'
    raise MacroError(f"unknown macro {name!r}")


def expand_macros(sql: str, context: QueryContext) -> str:
    """The backend's expansion: global substitutions, then the PostgreSQL macro engine."""
    sql = _global_macros(sql, context)
    original = sql

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        # Pre-5.3 compatibility: `$__timeGroup(...)` directly followed by ',' gets `AS "time"`.
        # Like Grafana, look at the first occurrence of the same text in the unexpanded query.
        if name == "__timeGroup":
            index = original.find(match.group(0))
            after = index + len(match.group(0))
            if index >= 0 and after < len(original) and original[after] == ",":
                name = "__timeGroupAlias"
        args = [arg.strip(" ") for arg in match.group(2).split(",")]
        return _evaluate(name, args, context)

    return _MACRO.sub(replace, sql)


def expand(sql: str, context: QueryContext, variables: Mapping[str, Variable] | None = None) -> str:
    """What Grafana sends to PostgreSQL for this panel SQL, time range and variable values."""
    return expand_macros(substitute_variables(sql, variables or {}), context)
