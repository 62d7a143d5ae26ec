"""The README and docs/: every page is linked from the README, every relative link leads
somewhere, every ``alrank`` command line they show is one the CLI accepts, and the README's
curl loop runs against ``alrank serve`` as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from procs import ROOT, Serve

from alrank.cli import COMMANDS
from alrank.cli import parser as client_parser
from service.cli import build_parser

PAGES = sorted((ROOT / "docs").glob("*.md"))
TEXTS = [ROOT / "README.md", *PAGES, ROOT / "bench" / "README.md"]


def blocks(path: Path, language: str = "sh") -> list[str]:
    """The fenced code blocks of ``path`` in ``language``, each as written."""
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def command_lines(block: str) -> list[str]:
    """The block's commands, continuation lines joined and comments cut."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip()]


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"(docs/{page.name})" in readme, page.name
    assert len(readme.splitlines()) < 200
    assert len((ROOT / "bench" / "README.md").read_text(encoding="utf-8").splitlines()) < 400


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"(https?:|mailto:|#)", target):
            continue
        file = target.split("#")[0]
        assert (path.parent / file).exists(), f"{path.name}: {target}"


def alrank_commands() -> list[tuple[str, list[str]]]:
    """Each ``alrank`` command of a shell block: the piece of a line between shell
    operators that starts with it, as its words."""
    found = []
    for path in TEXTS:
        for block in blocks(path):
            for line in command_lines(block):
                for piece in re.split(r"\s(?:\|\||&&|;|\||>>|>|<)\s", line):
                    piece = piece.strip()
                    if re.match(r"(\.venv/bin/)?alrank\s", piece):
                        # options shown as optional, [--name NEW], are checked as given
                        argv = shlex.split(re.sub(r"\[(--[^\]]*)\]", r"\1", piece))[1:]
                        found.append((f"{path.name}: {piece}", argv))
    return found


@pytest.mark.parametrize(("where", "argv"), alrank_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_alrank_command_shown_is_accepted(where, argv):
    """Parsed by the very parser ``alrank`` runs (nothing is executed)."""
    words = [w for w in argv if not w.startswith("-")]
    if words and words[0] in COMMANDS:
        client_parser().parse_args(argv)
    else:
        _, rest = build_parser().parse_known_args(argv)
        assert not rest or argv[0] == "worker", where


def test_the_documents_show_every_command():
    shown = {argv[0] for _, argv in alrank_commands() if argv}
    assert set(COMMANDS) | {"serve", "simulate"} <= shown


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's loop is written for curl")
def test_the_readme_loop_runs_as_written(tmp_path):
    """The README's curl loop, run by bash in the folder ``alrank serve`` was started in,
    with each curl made to fail on an error status: every call succeeds."""
    (loop,) = [b for b in blocks(ROOT / "README.md") if b.startswith("A=http://127.0.0.1:8000")]
    served = Serve(tmp_path / "alrank-data")
    try:
        script = loop.replace("A=http://127.0.0.1:8000", f"A={served.base}", 1)
        script = script.replace("curl -s ", "curl -sS --fail-with-body ")
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        served.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"received"' in done.stdout and '"curve"' in done.stdout
