"""A regular `pip install .` (not editable) carries everything rtnt reads at run time: the Hydra configs, the
native sources that LV2 export builds, the demo capture; runs are stored under the working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rtnt.config import REPO_DIR

# Runs the installed copy: the editable install's import hook is taken out first.
PROBE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "_editable" not in type(f).__module__]
sys.path.insert(0, {target!r})
import rtnt.config as c
from rtnt.tracking.uri import default_tracking_uri
assert c.PACKAGE_DIR.is_relative_to({target!r}) and not c.IN_CHECKOUT, c.PACKAGE_DIR
assert (c.CONF_DIR / "config.yaml").exists() and (c.NATIVE_DIR / "lv2" / "CMakeLists.txt").exists()
assert (c.PACKAGE_DIR / "demo" / "input.flac").exists()
print("STORE", default_tracking_uri())
sys.argv = ["rtnt-train", "--cfg", "job", "train=smoke", "preset=wavenet_a1_nano"]
from rtnt.cli.train import main
main()
"""


@pytest.mark.slow
def test_a_regular_install_runs_outside_the_checkout(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(REPO_DIR)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(target=str(target))], cwd=work, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"STORE sqlite:///{work}/mlruns/mlflow.db" in proc.stdout
    assert "name: wavenet_a1_nano" in proc.stdout
