"""The README fits on a few screens, every relative link resolves, and the commands table is complete."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    links = LINK.findall(page.read_text(encoding="utf-8"))
    return [link for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]


def test_readme_fits_on_a_few_screens() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_every_relative_link_resolves() -> None:
    assert PAGES, "no docs pages"
    missing = []
    for page in [README, *PAGES]:
        for link in _relative_links(page):
            target = (page.parent / link.partition("#")[0]).resolve()
            if not target.is_file():
                missing.append(f"{page.relative_to(ROOT)}: {link}")
    assert not missing


def test_every_page_says_who_it_is_for() -> None:
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# "), page.name
        assert re.match(r"\*For .+\.\*$", lines[2]), f"{page.name}: {lines[2]!r}"


def _commands_table() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `tiltstream "))


def test_commands_table_names_every_subcommand() -> None:
    group = typer.main.get_command(create_app(CliSettings()))
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"demo", "web", "process"} <= set(names)
    table = _commands_table()
    missing = [name for name in names if not re.search(rf"`tiltstream {re.escape(name)}\b", table)]
    assert not missing
