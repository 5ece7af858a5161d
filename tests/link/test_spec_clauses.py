"""docs/protocol.md's conformance clauses: each requirement is numbered once, listed in the
index of section 15, and names what checks it; the named tests exist, the `smp conformance`
clauses are exactly the runner's, and every quirk breaks the clause the index says."""

import ast
import re

from firmware_bridge.conformance import CLAUSES
from sim.quirks import QUIRKS
from tests.link.spec import SPEC, section, table_rows

ROOT = SPEC.parents[1]
TEXT = SPEC.read_text(encoding="utf-8")
INDEX = {row[0]: row for row in table_rows(section(TEXT, "## 15."), "| clause | level |")}


def test_every_clause_is_stated_once_in_its_section_and_indexed():
    stated = re.findall(r"\*\*(C-\d+\.\d+)\*\*", TEXT)
    assert len(stated) == len(set(stated)), "a clause number used twice"
    assert set(stated) == set(INDEX)
    for cid in stated:
        where = TEXT.index(f"**{cid}**")
        heading = [m for m in re.finditer(r"^## (\d+)\.", TEXT, re.M) if m.start() < where][-1]
        assert heading[1] == cid.split("-")[1].split(".")[0], f"{cid} in section {heading[1]}"


def test_the_device_clauses_are_the_runners():
    device = {cid for cid, row in INDEX.items() if "smp conformance" in row[3]}
    assert device == set(CLAUSES)
    for cid, c in CLAUSES.items():
        assert c.section == cid.split("-")[1].split(".")[0]
        assert INDEX[cid][1] == c.level


def test_every_quirk_breaks_the_clause_the_index_names():
    named = {q: cid for cid, row in INDEX.items() for q in re.findall(r"quirk `([a-z0-9-]+)`",
                                                                      row[3])}
    assert named == {q: clause for q, (clause, _) in QUIRKS.items()}


def test_every_test_the_index_names_exists():
    for cid, row in INDEX.items():
        checks = re.findall(r"`(tests/[^`]+)`", row[3])
        assert checks or "smp conformance" in row[3] or "not yet checked" in row[3], cid
        for node in checks:
            path, _, name = node.partition("::")
            tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
            defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
            assert name in defined, f"{cid}: {node} does not exist"
