"""Dependencies point one way (docs/architecture.md): console -> bridge, sessions, sim ->
protocols."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "firmware_bridge", "sim", "sessions", "console")
# What each package may import from this project, and which third-party packages it must not.
ALLOWED = {
    "protocols": set(),
    "firmware_bridge": {"protocols"},
    "sim": {"protocols", "firmware_bridge"},
    "sessions": {"protocols"},
    "console": {"protocols", "firmware_bridge", "sim", "sessions"},
}
FORBIDDEN_THIRD_PARTY = {
    "protocols": {"textual", "sqlalchemy", "serial", "alembic", "psycopg"},
    "firmware_bridge": {"textual", "sqlalchemy", "alembic"},
    "sim": {"textual", "sqlalchemy", "alembic"},
    "sessions": {"textual", "serial"},
    "console": set(),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


@pytest.mark.parametrize(("package", "path"), list(modules()),
                         ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_imports_follow_the_layering(package, path):
    found = imports_of(path)
    ours = found & set(PACKAGES) - {package}
    assert ours <= ALLOWED[package], f"{path} imports {ours - ALLOWED[package]}"
    bad = found & FORBIDDEN_THIRD_PARTY[package]
    assert not bad, f"{path} imports {bad}"


def test_the_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import textual.app\nfrom sqlalchemy import select\n")
    assert {"textual", "sqlalchemy"} <= imports_of(bad)
