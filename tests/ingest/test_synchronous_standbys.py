"""How many standbys a commit waits for, read from PostgreSQL's synchronous_standby_names."""

from __future__ import annotations

import pytest

from ingest.writer import synchronous_standby_count


@pytest.mark.parametrize(
    ("names", "count"),
    [
        ("", 0),
        ("  ", 0),
        ("node2", 1),  # what Patroni writes for one synchronous standby
        ('"node2"', 1),
        ("node2, node3", 1),  # a plain list: the first that is connected
        ("*", 1),
        ("2 (node2, node3)", 2),
        ("FIRST 1 (node2,node3)", 1),
        ("ANY 2 (a, b, c)", 2),
        ("first 1(a,b)", 1),
    ],
)
def test_standbys_a_commit_waits_for(names: str, count: int) -> None:
    assert synchronous_standby_count(names) == count
