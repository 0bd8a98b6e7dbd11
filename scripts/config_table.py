"""Print (or check) the README's configuration table, generated from `.env.example`.

`.env.example` is the one list of variables (tests/test_deploy.py keeps it in step with
settings.py); the README's table between the CONFIG markers is made from it:
`.venv/bin/python scripts/config_table.py --write` rewrites it, `--check` exits 1 when stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- CONFIG:BEGIN -->", "<!-- CONFIG:END -->"
_VAR = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]+)=(.*)$")


def rows() -> list[tuple[str, str, str, str]]:
    """(group, name, default, meaning) for every variable in .env.example."""
    result, group, comment = [], "", []
    for line in (ROOT / ".env.example").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# ---"):
            group = stripped.strip("# -").strip()
            comment = []
            continue
        match = _VAR.match(stripped)
        if match:
            name, value = match.group(2), match.group(3).strip()
            result.append((group, name, value or "(empty)", " ".join(comment)))
            comment = []
        elif stripped.startswith("#") and group:
            comment.append(stripped.lstrip("#").strip())
        elif not stripped:
            comment = []
    return result


def table() -> str:
    lines, group = [], None
    for row_group, name, default, meaning in rows():
        if row_group != group:
            group = row_group
            lines += ["", f"**{group}**", "", "| variable | default | meaning |", "|---|---|---|"]
        meaning = meaning.replace("|", "\\|")
        lines.append(f"| `{name}` | `{default}` | {meaning} |")
    return "\n".join(lines).strip() + "\n"


def render(readme: str) -> str:
    before, rest = readme.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{table()}{END}{after}"


def main(argv: list[str]) -> int:
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    fresh = render(readme)
    if "--write" in argv:
        readme_path.write_text(fresh)
        return 0
    if "--check" in argv:
        if fresh != readme:
            print("README's configuration table is stale: run scripts/config_table.py --write")
            return 1
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
