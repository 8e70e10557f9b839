"""What the repository states about building it stays true: the minimum Rust and cited files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import tomllib
from conftest import REPO_ROOT


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _declared_rust_version() -> str:
    cargo = tomllib.loads((REPO_ROOT / "Cargo.toml").read_text())
    version: str = cargo["package"]["rust-version"]
    return version


@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo")
def test_rust_version_is_the_oldest_the_locked_crates_allow() -> None:
    done = subprocess.run(
        ["cargo", "metadata", "--locked", "--format-version", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    )
    packages = json.loads(done.stdout)["packages"]
    needed = max(_version(p["rust_version"]) for p in packages if p.get("rust_version"))
    declared = _declared_rust_version()
    # Equal, not merely at least: a declared minimum above what is needed turns users away.
    assert _version(declared)[:2] == needed[:2], (declared, needed)


def test_the_package_version_is_the_one_the_wheel_takes_from_cargo_toml() -> None:
    # Cargo.toml is the version's one source (the wheel's metadata comes from it); __init__.py
    # restates it as a constant because reading package metadata at import would slow every
    # GARM command down (importlib.metadata costs more than the provider's own start-up).
    import garm_provider_lxd

    cargo = tomllib.loads((REPO_ROOT / "Cargo.toml").read_text())
    assert garm_provider_lxd.__version__ == cargo["package"]["version"]


def test_readme_and_setup_state_the_declared_rust_version() -> None:
    declared = _declared_rust_version()
    readme = (REPO_ROOT / "README.md").read_text()
    assert re.findall(r"rustc ≥ ([0-9.]+)", readme) == [declared]
    setup = (REPO_ROOT / "tests" / "setup.sh").read_text()
    # setup.sh reads the number from Cargo.toml rather than restating it.
    assert "rust-version" in setup and not re.search(r"rustc >= [0-9]", setup)


def test_docs_cite_only_files_that_exist() -> None:
    cited: list[tuple[str, str]] = []
    documents = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    for document in documents:
        text = document.read_text()
        # Markdown links to repository files, relative to the document.
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
            if not (document.parent / target).exists():
                cited.append((document.name, target))
        # Paths in backquotes that name a file of this repository by its top-level folder.
        for path in re.findall(r"`((?:python|rust|tests|benches|testdata|docs)/[\w./-]+)`", text):
            if "*" not in path and not (REPO_ROOT / path).exists():
                cited.append((document.name, path))
    assert cited == []


def test_no_file_cites_a_test_file_or_design_note_that_is_not_here() -> None:
    stale: list[tuple[str, str]] = []
    roots = ["README.md", "docs", "tests", "benches", "python", "rust", "testdata", ".ci"]
    for root in roots:
        top = REPO_ROOT / root
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if not path.is_file() or path.suffix not in {".md", ".py", ".rs", ".sh", ".toml", ""}:
                continue
            text = path.read_text(errors="replace")
            if "DESIGN.md" in text and path.name != "test_packaging.py":
                stale.append((str(path.relative_to(REPO_ROOT)), "DESIGN.md"))
            for name in set(re.findall(r"\b(?:test|bench)_\w+\.py\b", text)):
                if not any((REPO_ROOT / folder / name).exists() for folder in ("tests", "benches")):
                    stale.append((str(path.relative_to(REPO_ROOT)), name))
    assert stale == []
