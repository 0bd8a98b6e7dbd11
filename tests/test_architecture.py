"""The structure rules that import-linter does not check (docs/architecture.md):

- no module in `apps/` over 500 lines (god files come back one function at a time);
- imports at the top of modules: at most 15 function-local imports in `apps/` and `supportai/`
  (tests and migrations aside), each right under a comment that says why it cannot be at the top
  (the Celery task pattern, `AppConfig.ready()`, a heavy optional library).

The layer contract itself is `lint-imports`, run by scripts/test.sh.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500
MAX_LOCAL_IMPORTS = 15


def _sources(*tops: str, with_tests: bool) -> list[Path]:
    found = []
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts:
                continue
            if not with_tests and ("tests" in parts or path.name.startswith("test_")):
                continue
            found.append(path)
    return found


def _local_imports(path: Path) -> list[int]:
    """Line numbers of import statements inside function bodies."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines += [
                inner.lineno
                for inner in ast.walk(node)
                if isinstance(inner, ast.Import | ast.ImportFrom)
            ]
    return sorted(set(lines))


def test_no_module_in_apps_is_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _sources("apps", with_tests=True)
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their seams (docs/architecture.md): {long}"


def test_function_local_imports_are_few_and_each_says_why():
    local = {path: _local_imports(path) for path in _sources("apps", "supportai", with_tests=False)}
    where = [f"{p.relative_to(ROOT)}:{n}" for p, lines in local.items() for n in lines]
    assert 0 < len(where) <= MAX_LOCAL_IMPORTS, (
        f"{len(where)} function-local imports (at most {MAX_LOCAL_IMPORTS}): {where}"
    )
    unexplained = []
    for path, lines in local.items():
        text = path.read_text().splitlines()
        for n in lines:
            above = text[n - 2].strip() if n >= 2 else ""
            if not above.startswith("#"):
                unexplained.append(f"{path.relative_to(ROOT)}:{n}")
    assert not unexplained, f"say in a comment above why these are not at the top: {unexplained}"
