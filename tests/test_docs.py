"""The README and docs stay true: every test they cite as the evidence for a behaviour exists, the manual builds
with every page reachable, and the README's tour runs as written."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import tuner

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


def test_the_readme_is_an_entrance_not_a_manual():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def test_the_manual_builds_as_a_site_with_every_page_in_its_navigation(tmp_path):
    """mkdocs.yml is strict: a broken link, a missing anchor or a page left out of the navigation fails the build."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "commands" / "index.html").is_file()


def _tour_commands() -> list[list[str]]:
    """The commands of the README's five-minute tour, in order."""
    tour = (REPO / "README.md").read_text().split("## A five-minute tour", 1)[1]
    block = tour.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("tuner ")]


def test_the_readme_tour_has_the_four_steps():
    assert [command[1] for command in _tour_commands()] == ["run", "report", "best", "train"]


@pytest.mark.slow
@pytest.mark.integration
def test_the_readme_tour_runs_as_written(tmp_path, shared_data, monkeypatch):
    """Each command of the tour, as the README prints it, from a folder holding the shipped search spaces."""
    shutil.copytree(REPO / "search_spaces", tmp_path / "search_spaces")
    monkeypatch.setenv("TUNER_DATA_DIR", str(shared_data))
    for command in _tour_commands():
        outcome = tuner(*command[1:], cwd=tmp_path)
        assert outcome.returncode == 0, (command, outcome.stdout[-2000:], outcome.stderr[-2000:])
    experiment = tmp_path / "runs" / "mf-ml100k"
    assert (experiment / "report" / "report.html").is_file() and (tmp_path / "best.yaml").is_file()
    assert "best epoch" in outcome.stdout  # tuner train ends with the metrics at the best-validation epoch
