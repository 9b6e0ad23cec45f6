"""Documentation is tested: every command, option and setting is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import typer.main

from synthguard.cli.main import app
from synthguard.config import ENV_PREFIX, Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _commands() -> dict[str, list[str]]:
    group = typer.main.get_command(app)
    found: dict[str, list[str]] = {}

    def walk(command: object, prefix: str) -> None:
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, f"{prefix} {name}".strip())
            return
        options = [
            opt
            for param in getattr(command, "params", [])
            for opt in getattr(param, "opts", [])
            if opt.startswith("--")
        ]
        found[prefix] = options

    walk(group, "")
    return found


def test_every_command_and_option_is_documented() -> None:
    text = "\n".join(path.read_text() for path in sorted(DOCS.glob("cli*.md")))
    sections = re.split(r"^## ", text, flags=re.M)
    for command, options in _commands().items():
        section = next((s for s in sections if s.startswith(f"`synthguard {command}")), None)
        assert section is not None, f"docs/cli*.md have no section for `synthguard {command}`"
        for option in options:
            if option == "--help":
                continue
            assert option in section, f"{option} of `synthguard {command}` is not documented"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    for field in dataclasses.fields(Settings):
        assert f"`{field.name}`" in text, field.name
        assert f"`{ENV_PREFIX}{field.name.upper()}`" in text, field.name
