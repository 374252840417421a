"""The README and docs stay true: every test they cite as the evidence for a behaviour exists, the manual builds
with every page reachable, every `tuner` command they show is one the CLI accepts (and its spec and `--set` values
load), each command's synopsis in the manual names all of its options, and the README's tour runs as written."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tests.cli import tuner
from tuner.cli import app
from tuner.errors import SpecError
from tuner.spec_loader import load_spec

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
CLI = typer.main.get_command(app)


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


# ---- every command the docs show --------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\[|\||\.\.\.|^[A-Z][A-Z_]*(\.[a-z]+)?$|=[A-Z]")  # SPEC.yaml, [--x N], a|b, KEY=VALUE


def _shown_commands() -> list[tuple[str, str]]:
    """("file:line", command) for every `tuner` command the README and the manual show: each line of a code block
    that runs one (`$ ` prompt and `# comments` stripped), and each inline code span that starts with one."""
    found = []
    for doc in DOCS:
        in_block, prose = False, []
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
            elif in_block and line.removeprefix("$ ").startswith("tuner "):
                found.append((f"{doc.name}:{number}", line.removeprefix("$ ").split(" #")[0].strip()))
            prose.append("" if in_block or line.startswith("```") else line)
        text = "\n".join(prose)
        for span in re.finditer(r"`(tuner [a-z][^`]*)`", text):  # a code span may wrap onto the next line
            found.append((f"{doc.name}:{text.count(chr(10), 0, span.start()) + 1}", " ".join(span[1].split())))
    return found


def _is_synopsis(words: list[str]) -> bool:
    return any(PLACEHOLDER.search(word) for word in words[1:])


def _is_group(command) -> bool:
    return hasattr(command, "commands")  # typer's click (typer vendors it) Group: `tuner jobs`


def _command(name: str, group=CLI):
    command = group.get_command(typer.Context(group), name)
    assert command is not None, f"no command `{name}`"
    return command


def _options(command) -> set[str]:
    commands = command.commands.values() if _is_group(command) else [command]
    return {opt for each in commands for param in each.params for opt in param.opts if opt.startswith("--")}


def _check_synopsis(words: list[str]) -> None:
    """A synopsis (`tuner run SPEC.yaml [--smoke]`, `tuner jobs list | status JOB`): its command and the subcommands
    it names exist, and so does every option it names."""
    command = _command(words[1])
    if _is_group(command) and len(words) > 2:
        alternatives = " ".join(words[2:]).split("|")
        for alternative in alternatives:
            _command(alternative.split()[0], command)
    named = {word.strip("[]").split("=")[0] for word in words if word.strip("[]").startswith("--")}
    assert named <= _options(command), f"`tuner {words[1]}` has no {sorted(named - _options(command))}"


def _check_concrete(words: list[str]) -> None:
    """A command as a user would type it: the CLI parses it (command, options, their values and arguments), and a
    spec it names in this repository loads with its `--set` overrides, as the command would load it."""
    command, args = CLI, words[1:]
    if len(words) == 2:  # `tuner run` in a sentence names the command
        _command(words[1])
        return
    while _is_group(command):
        command, args = _command(args[0], command), args[1:]
    try:
        context = command.make_context(words[1], list(args))
    except Exception as error:  # click's usage errors, which typer vendors without a public name for their base
        raise AssertionError(f"the CLI refuses it: {error}") from error
    spec_file = context.params.get("spec_file")
    if spec_file is not None and (REPO / spec_file).is_file():
        load_spec(REPO / spec_file, context.params.get("overrides") or (), fixing_wins=words[1] == "train")


def test_every_command_the_docs_show_is_one_the_cli_accepts():
    shown = _shown_commands()
    assert len(shown) > 80
    wrong = []
    for where, text in shown:
        words = shlex.split(text)
        try:
            (_check_synopsis if _is_synopsis(words) else _check_concrete)(words)
        except (AssertionError, SpecError) as error:
            wrong.append(f"{where}: {text}: {error}")
    assert wrong == []


def test_each_commands_synopsis_in_the_manual_names_every_option_it_has():
    headings = re.findall(r"^## `(tuner [^`]*)`", (REPO / "docs" / "commands.md").read_text(), re.MULTILINE)
    synopses = {shlex.split(heading)[1]: shlex.split(heading) for heading in headings}
    assert set(synopses) == set(CLI.list_commands(typer.Context(CLI))) - {"schema"}  # schema: "... and `tuner schema`"
    incomplete = {name: sorted(_options(_command(name)) - {w.strip("[]").split("=")[0] for w in words})
                  for name, words in synopses.items()}
    assert {name: missing for name, missing in incomplete.items() if missing} == {}


def test_the_docs_command_checker_catches_a_wrong_option_a_bad_value_and_a_bad_override():
    for text in ("tuner run search_spaces/mf.yaml --num-sample 3", "tuner run search_spaces/mf.yaml --num-samples x",
                 "tuner train search_spaces/mf.yaml --set epochz=3", "tuner jobs lists", "tuner best A [--outt F]"):
        words = shlex.split(text)
        with pytest.raises((AssertionError, SpecError)):
            (_check_synopsis if _is_synopsis(words) else _check_concrete)(words)
