"""Builds native/ with CMake and Ninja (from the venv) and runs the C++ tests via CTest.

The C++ tests cover conformance (RTNeural vectors and NAM Core's .nam outputs), partition invariance and
instance isolation bit for bit, the allocation counter (replaced global operator new and malloc armed around
process()) and a replay of the fuzz corpus and every committed fuzz regression.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rtnt.config import REPO_DIR, shared_dir


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


@pytest.mark.parametrize("native_arch", ["ON", "OFF"], ids=["march-native", "portable"])
def test_cpp_tests_build_and_pass(tmp_path: Path, native_arch: str) -> None:
    """Both the build tuned for this CPU and the portable one (the compiler's baseline vector ISA,
    other lane width and register count) must pass bit for bit."""
    cmake, ninja = _tool("cmake"), _tool("ninja")
    if cmake is None or ninja is None:
        pytest.skip("cmake and ninja are needed (pip install -e .[test])")
    conformance = shared_dir() / "conformance" / "rtneural"
    if not (conformance / "conv.json").exists():
        pytest.skip(f"conformance vectors not found at {conformance}")
    nam = shared_dir() / "conformance" / "nam"
    if not (nam / "vectors" / "index.json").exists():
        pytest.skip(f"NAM conformance vectors not found at {nam}")
    build = tmp_path / "build"
    configure = [
        cmake, "-S", str(REPO_DIR / "native"), "-B", str(build), "-G", "Ninja",
        f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DRTNT_BUILD_TESTS=ON", f"-DRTNT_NATIVE_ARCH={native_arch}",
        f"-DRTNT_CONFORMANCE_DIR={conformance}", f"-DRTNT_NAM_CONFORMANCE_DIR={nam}",
    ]  # fmt: skip
    for cmd in (configure, [cmake, "--build", str(build), "-j", "2"], ["ctest", "--output-on-failure"]):
        if cmd[0] == "ctest":
            cmd[0] = _tool("ctest") or "ctest"
        proc = subprocess.run(cmd, cwd=build if cmd[0].endswith("ctest") else None, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "100% tests passed" in proc.stdout
