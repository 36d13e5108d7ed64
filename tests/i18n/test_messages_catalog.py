"""Every message the services and the schemas' rules give a person has its Danish.

The web app shows domain refusals (`LdlError`) and validation rules (`infra.types.Rule`) in the
reader's language through the `messages` catalog, so each must be a literal msgid there: a message
built with an f-string could never be translated, and this test names it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from babel.messages.pofile import read_po

from i18n import catalog_path
from infra.types import RULES

ROOT = Path(__file__).parents[2]
PACKAGES = ("access", "trials", "evidence", "devices", "ingest", "web", "infra")
# Their refusals reach only API clients and operators (API keys' roles, the broker's files,
# configuration), never a page: English is their language (README, "Languages").
NOT_SHOWN_ON_PAGES = {
    "access/deps.py",
    "devices/routes.py",
    "devices/broker.py",
    "infra/settings.py",
    "infra/migrate.py",
    "infra/db.py",
}
ERRORS = {
    "LdlError", "NotFound", "Conflict", "Invalid", "Forbidden", "Unauthorized",
    "TooManyAttempts", "CsrfFailed", "Message", "JournalUnavailable",
}  # fmt: skip
SCHEMAS = (
    "trials.schemas",
    "access.schemas",
    "devices.schemas",
    "trials.pseudonyms",
    "evidence.schemas",
)


def _danish() -> dict[str, str]:
    with catalog_path("da", "messages").open("rb") as po_file:
        return {str(m.id): str(m.string) for m in read_po(po_file) if m.id}


def _literals(node: ast.expr) -> list[str] | None:
    """The msgids a message argument can be; None when it is built at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _messages() -> tuple[set[str], list[str]]:
    found: set[str] = set()
    built: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            if where in NOT_SHOWN_ON_PAGES or "/migrations/" in where:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name not in ERRORS:
                    continue
                first = node.args[0]
                literals = _literals(first)
                if literals is not None:
                    found.update(literals)
                elif isinstance(first, ast.JoinedStr | ast.BinOp):
                    built.append(f"{where}:{node.lineno}")
    return found, built


def test_no_message_for_a_person_is_built_from_an_f_string() -> None:
    _, built = _messages()
    assert built == []  # a template with %(name)s and its params instead


def test_every_service_message_and_rule_has_its_danish() -> None:
    for module in SCHEMAS:
        importlib.import_module(module)
    danish = _danish()
    messages, _ = _messages()
    wanted = messages | {rule.message for rule in RULES.values()}
    assert len(wanted) > 60
    assert sorted(m for m in wanted if not danish.get(m)) == []
