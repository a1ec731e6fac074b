"""The built wheel holds every package: installed outside the source tree, the CLI and imports work.

The editable install hides a package missing from the wheel (it maps the whole source folder), so
this builds the wheel from a copy of the sources, installs it into a fresh virtual environment in
a temporary folder and runs that environment's ``retrofit`` from a working directory outside the
repository. The dependencies (torch, ...) are reached through a ``.pth`` line naming the test's
own site-packages: a plain folder on the path, whose ``.pth`` files (the editable install's finder
among them) are not run, so nothing of the source tree can fill in for a missing package.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "retrofit", "adapters"]


def _subpackages() -> list[str]:
    """Every package of the source tree under its installed name (adapters/ → retrofit.adapters)."""
    names = []
    for top, installed in (("retrofit", "retrofit"), ("adapters", "retrofit.adapters")):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT / top).parts
            names.append(".".join((installed, *parts)))
    return names


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """Build the wheel from a copy of the sources and install it into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if not path.exists():
            continue
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "dist"), str(src)], cwd=tmp, env=env)
    wheels = list((tmp / "dist").glob("retrofit_rl-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib], cwd=tmp, env=env).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "retrofit_test_deps.pth").write_text("".join(f"{path}\n" for path in sorted(deps)))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(wheels[0])], cwd=tmp, env=env)
    return venv, site, env


def test_every_subpackage_imports_from_the_installed_wheel(installed, tmp_path):
    venv, site, env = installed
    names = _subpackages()
    assert "retrofit.suite" in names and "retrofit.adapters" in names
    code = ("import importlib, json, sys\n"
            "print(json.dumps({n: importlib.import_module(n).__file__ for n in sys.argv[1:]}))")
    result = _run([str(venv / "bin" / "python"), "-c", code, *names], cwd=tmp_path, env=env)
    files = json.loads(result.stdout.splitlines()[-1])
    for name, file in files.items():
        assert Path(file).resolve().is_relative_to(site.resolve()), f"{name} came from {file}"
    data = site / "retrofit" / "data" / "default"
    assert (site / "retrofit" / "py.typed").is_file()
    assert list(data.glob("*.hdf5")) and (data / "README.md").is_file()


@pytest.mark.parametrize("args", [["--help"], ["tasks"], ["suite", "--help"]])
def test_installed_retrofit_command_runs_outside_the_source_tree(installed, tmp_path, args):
    venv, _, env = installed
    script = venv / "bin" / "retrofit"
    assert script.is_file(), "the wheel installs no retrofit command"
    result = _run([str(script), *args], cwd=tmp_path, env=env)
    assert result.stdout.strip()


def test_installed_wheel_splits_the_shipped_data_with_the_default_d_p(installed, tmp_path):
    """The installed package finds its shipped data and draws the protocol's default D_p (the
    100 best SAFE episodes, docs/data.md) — the same split as the editable checkout."""
    venv, _, env = installed
    code = (
        "import json; from retrofit import TrajectoryDataset;"
        "from retrofit.data.shipped import default_dataset_path;"
        "d = TrajectoryDataset.from_hdf5(default_dataset_path('OfflineBallCircle-v0'));"
        "p, n = d.split_preferences(20.0, seed=3);"
        "print(json.dumps(p.metadata['split']['preferred_indices']))"
    )
    result = _run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env)
    from retrofit import TrajectoryDataset
    from retrofit.data.shipped import default_dataset_path

    here = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallCircle-v0"))
    expected = here.split_preferences(20.0, seed=3)[0].metadata["split"]["preferred_indices"]
    assert json.loads(result.stdout) == expected and len(expected) == 100
