"""The README stays true: every setting is documented, every documented command exists."""

from __future__ import annotations

import re
from pathlib import Path

from infra.settings import Settings
from tests.deploy.test_compose import ldl_commands

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        f"LDL_{name.upper()}"
        for name in Settings.model_fields
        if f"LDL_{name.upper()}" not in README
    ]
    assert not missing, f"settings the README does not document: {missing}"


def test_every_ldl_command_the_readme_names_exists() -> None:
    named = set(re.findall(r"^ldl ([a-z]+(?: [a-z]+)?)", README, flags=re.MULTILINE))
    commands = ldl_commands()
    unknown = {n for n in named if n not in commands and n.split()[0] not in commands}
    assert not unknown, f"the README names commands that do not exist: {unknown}"
    assert named, "the README's command list was not found"
