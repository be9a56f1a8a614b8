"""The Sphinx documentation builds without warnings, every cross-reference resolving (as
`make -C docs html` does, with -n), and the installation page agrees with the commands."""

import subprocess
import sys
from pathlib import Path

import pytest

from mkl_tp import extract

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings_or_dangling_references(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-n",
            "-W",
            "--keep-going",
            "-q",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "html" / "maths.html").is_file()
    assert "mkl_tp.extract.main" in (tmp_path / "html" / "api.html").read_text()


def test_installation_page_agrees_with_the_extractor(capsys):
    page = (DOCS / "installation.rst").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in page
    with pytest.raises(SystemExit):
        extract.main(["--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert "downloaded if missing" in helped  # --weights imagenet
    assert "downloads them there once if they are missing" in " ".join(page.split())
    assert "No model weights or datasets are downloaded" not in page


def test_readme_keeps_two_commands_and_tours_the_new_options():
    readme = (DOCS.parent / "README.rst").read_text()
    setup = readme.split("Set up and run")[1].split("A tour")[0]
    commands = [
        line.split("#")[0].strip() for line in setup.splitlines() if line.startswith("   make")
    ]
    assert commands == ["make demo", "make test"]
    tour = readme.split("A tour")[1].split("Documentation")[0]
    assert "--fps" in tour and "levels.png" in tour


def _python_blocks(text):
    """The code of each ``.. code-block:: python`` of an .rst text, unindented."""
    blocks = []
    for part in text.split(".. code-block:: python\n\n")[1:]:
        lines = []
        for line in part.splitlines():
            if line and not line.startswith("   "):
                break
            lines.append(line[3:])
        blocks.append("\n".join(lines).strip())
    return blocks


def test_the_readme_python_runs_as_written_and_says_the_shape_of_beta():
    readme = (DOCS.parent / "README.rst").read_text()
    tour = next(b for b in _python_blocks(readme) if "load_basic_motions" in b)
    namespace = {}
    exec(tour, namespace)  # the snippet as a user pastes it
    comment = next(line for line in tour.splitlines() if "clf.beta_.shape" in line)
    assert f"# {namespace['clf'].beta_.shape}" in comment.replace("  ", " ")
    extraction = next(b for b in _python_blocks(readme) if "extract_features" in b)
    assert 'if __name__ == "__main__":' in extraction  # workers import the script again
