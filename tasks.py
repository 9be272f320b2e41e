#!/usr/bin/env python3
"""The project's commands; each sets itself up on a machine with only Python.

    python3 tasks.py demo         # end-to-end demo on a local SQLite tracking store
    python3 tasks.py test         # the whole test suite, in parallel (what CI runs)
    python3 tasks.py test --fast  # pure tests and doctests: no servers, Spark or browser
    python3 tasks.py lint         # ruff check, ruff format --check, mypy (core), lint-imports
    python3 tasks.py test-alibi   # the alibi-detect backend's tests (CI runs them too)
    python3 tasks.py docs         # the documentation site: mkdocs build --strict into site/

Arguments after the command go to pytest (test, test-alibi) or mkdocs (docs).
demo, test, lint and docs create ./.venv (numpy 2, no alibi-detect) and install
the package with its test and docs extras when setup.cfg has changed since the
last install.
test-alibi does the same in ./.venv-alibi with the ``alibi`` extra, numpy<2 and
PyTorch's CPU build, and runs tests_alibi/.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP_NAME = ".installed-setup-cfg"
# The alibi-detect backend's own environment. alibi-detect pins numpy<2, and its
# MMD and LSDD detectors need PyTorch: 2.13.0 is pinned because this machine
# keeps that release's CPU build on disk (pip's find-links), where any other
# release would bring the CUDA build, several GB.
ALIBI_VENV = ROOT / ".venv-alibi"
ALIBI_REQUIREMENTS = ["numpy<2", "torch==2.13.0", "pytest>=8"]


def _python(venv_dir: Path) -> Path:
    return (
        venv_dir
        / ("Scripts" if os.name == "nt" else "bin")
        / ("python.exe" if os.name == "nt" else "python")
    )


def _setup_hash(*extra: str) -> str:
    digest = hashlib.sha256()
    for name in ("setup.cfg", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    for requirement in extra:
        digest.update(requirement.encode())
    return digest.hexdigest()


def ensure_environment(
    venv_dir: Path = VENV, extras: str = "test,docs", requirements: tuple = ()
) -> Path:
    """Create ``venv_dir`` and install the package into it unless the same setup is there."""
    python = _python(venv_dir)
    stamp = venv_dir / STAMP_NAME
    wanted = _setup_hash(extras, *requirements)
    if not python.exists():
        print(f"creating {venv_dir.name} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"installing mlflow-observe[{extras}] into {venv_dir.name} ...", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extras}]", *requirements],
        check=True,
    )
    stamp.write_text(wanted)
    return python


# The fast subset: every test that starts no process (mlflow server, models serve,
# a Python subprocess), no Spark session and no browser, and takes a few seconds at most.
FAST_MARKERS = "not server and not spark and not browser and not slow"

# python3 tasks.py lint: each check runs even when an earlier one failed.
LINT_COMMANDS = (
    ("ruff check", ["ruff", "check", "."]),
    ("ruff format --check", ["ruff", "format", "--check", "."]),
    ("mypy (mlflow_observe/core)", ["mypy"]),
    ("import-linter (layers)", ["lint-imports"]),
)


def lint(env) -> int:
    failed = []
    for name, (tool, *args) in LINT_COMMANDS:
        print(f"== {name} ==", flush=True)
        if subprocess.run([str(BIN / tool), *args], cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    # Not worded as a test summary: the test suites' summaries end the CI log.
    if failed:
        print(f"lint failed: {'; '.join(failed)}")
    else:
        print(f"lint: all {len(LINT_COMMANDS)} checks clean")
    return 1 if failed else 0


def test_command(args) -> list:
    """pytest on every core: the fast subset test by test, or the whole suite file by file."""
    workers = str(os.cpu_count() or 1)
    if "--fast" in args:
        args = [a for a in args if a != "--fast"]
        return [str(PYTHON), "-m", "pytest", "-n", workers, "-m", FAST_MARKERS, *args]
    # loadfile: a module's tests share its module-scoped fixtures (an mlflow server, a
    # Spark session, a trained model), so each module runs whole on one worker.
    return [str(PYTHON), "-m", "pytest", "-n", workers, "--dist", "loadfile", *args]


def main(argv) -> int:
    if not argv or argv[0] not in ("demo", "test", "test-alibi", "docs", "lint"):
        print(__doc__)
        return 2
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if argv[0] == "test-alibi":
        python = ensure_environment(ALIBI_VENV, "alibi", tuple(ALIBI_REQUIREMENTS))
        # Only tests_alibi/ (the main suite's testpaths never include it); the rootdir's
        # --doctest-modules then finds no module to run there.
        command = [str(python), "-m", "pytest", "tests_alibi", *argv[1:]]
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    ensure_environment()
    if argv[0] == "lint":
        return lint(env)
    if argv[0] == "demo":
        command = [str(PYTHON), str(ROOT / "examples" / "quickstart.py"), *argv[1:]]
    elif argv[0] == "docs":
        # --strict: any warning (a broken link, an unresolved API name) fails the build.
        # NO_MKDOCS_2_WARNING silences the theme's end-of-life banner (not a build warning).
        env["NO_MKDOCS_2_WARNING"] = "1"
        command = [
            str(PYTHON),
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(ROOT / "site"),
            *argv[1:],
        ]
    else:
        command = test_command(argv[1:])
    return subprocess.run(command, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
