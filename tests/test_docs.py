"""The README and docs stay true: every test they cite as the evidence for a behaviour exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cited_tests() -> set[tuple[str, str]]:
    """(file, test) for each `test_x.py::test_y` cited, and each `::test_z` after it in the same table cell."""
    cited = set()
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for cell in doc.read_text().split("|"):
            current = None
            for file, name in re.findall(r"(?:`(test_\w+\.py))?::(test_\w+)", cell):
                current = file or current
                if current:
                    cited.add((current, name))
    return cited


def test_every_test_the_docs_cite_exists():
    cited = _cited_tests()
    assert len(cited) > 20
    missing = [f"{file}::{name}" for file, name in sorted(cited)
               if f"def {name}(" not in (REPO / "tests" / file).read_text()]
    assert missing == []
