"""The macro expander against the cases in Grafana's own macros_test.go and templateSrv rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grafana.macros import (
    ALL_VALUE,
    MacroError,
    QueryContext,
    Variable,
    expand,
    go_float,
    substitute_variables,
)

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
CONTEXT = QueryContext(FROM, FROM + timedelta(minutes=5), interval=timedelta(minutes=10))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select min($__time(time_column))", 'select min(time_column AS "time")'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
        ),
        (
            "SELECT $__timeGroup(time_column,'5m')",
            "SELECT floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "SELECT $__timeGroupAlias(time_column , '5m')",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"',
        ),
        ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
        ("select $__unixEpochNanoFrom()", "select 1523556000000000000"),
        (
            "SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')",
            'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"',
        ),
        ("SELECT $__interval, $__interval_ms", "SELECT 10m, 600000"),
        ("SELECT $__unixEpochFrom(), $__unixEpochTo()", "SELECT 1523556000, 1523556300"),
        (
            "SELECT $__timeGroup(t, '12d')",
            "SELECT floor(extract(epoch from t)/1.0368e+06)*1.0368e+06",
        ),
        ("SELECT $__timeGroup(t, '20ms')", "SELECT floor(extract(epoch from t)/0.02)*0.02"),
    ],
)
def test_macros_expand_like_grafanas_postgres_engine(sql: str, expected: str) -> None:
    assert expand(sql, CONTEXT) == expected


def test_timescaledb_switch_makes_time_group_a_time_bucket() -> None:
    context = QueryContext(FROM, FROM + timedelta(minutes=5), timescaledb=True)
    assert expand("GROUP BY $__timeGroup(time_column , '12d')", context) == (
        "GROUP BY time_bucket('1036800.000s',time_column)"
    )
    assert expand("GROUP BY $__timeGroup(c,'20ms')", context) == "GROUP BY time_bucket('0.020s',c)"


def test_fractional_seconds_keep_go_rfc3339nano_form() -> None:
    start = datetime(1960, 2, 1, 7, 0, 0, 500000, tzinfo=UTC)
    context = QueryContext(start, datetime(1980, 2, 3, 8, 0, 0, 500000, tzinfo=UTC))
    assert expand("$__timeFilter(t)", context) == (
        "t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"
    )
    assert expand("$__unixEpochFilter(t)", context) == "t >= -312915600 AND t <= 318412800"


def test_unknown_macro_and_missing_arguments_fail_like_grafana() -> None:
    with pytest.raises(MacroError, match="unknown macro"):
        expand("SELECT $__nope(x)", CONTEXT)
    with pytest.raises(MacroError, match="needs time column and interval"):
        expand("SELECT $__timeGroup(x)", CONTEXT)


def test_go_float_matches_fmt_v() -> None:
    assert [go_float(v) for v in (300.0, 86400.0, 604800.0, 1e6, 0.001, 0.0001, 1.5)] == [
        "300",
        "86400",
        "604800",
        "1e+06",
        "0.001",
        "0.0001",
        "1.5",
    ]


def test_variables_are_formatted_as_grafanas_sql_data_sources_do() -> None:
    variables = {
        "single": Variable("O'Brien"),
        "multi": Variable(["1", "2"], multi=True),
        "one_of_multi": Variable("3", multi=True),
        "all": Variable(ALL_VALUE, multi=True, include_all=True, options=["4", "5"]),
        "custom_all": Variable(ALL_VALUE, include_all=True, all_value="SELECT id FROM t"),
    }
    sql = "$single ${multi} [[one_of_multi]] ${all:csv} IN ($custom_all) $__timeFilter(x) $other"
    assert substitute_variables(sql, variables) == (
        "O''Brien '1','2' '3' '4','5' IN (SELECT id FROM t) $__timeFilter(x) $other"
    )
