"""The Dockerfile's build step, without a Docker engine (none runs here or in CI): the files it copies are enough to
install the package and start the command, and the image runs as a non-root user with the store on a volume."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_files_the_dockerfile_copies_install_and_run(tmp_path):
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied: list[str] = []
    for line in dockerfile.splitlines():
        match = re.match(r"COPY\s+(.+)\s+(\S+)$", line)
        if match:
            copied += match.group(1).split()
    assert {"pyproject.toml", "connector", "mappings"} <= set(copied)
    context = tmp_path / "context"
    context.mkdir()
    for name in copied:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(context)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("hubspot_retention_connector-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=600)
    assert (target / "connector" / "cli.py").is_file() and (target / "connector" / "model" / "build.py").is_file()
    assert "USER connector" in dockerfile and 'VOLUME ["/data"]' in dockerfile
    assert "CONNECTOR_STATE_URL=sqlite:////data/state.db" in dockerfile
