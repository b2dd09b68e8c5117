"""The C++ core builds and passes its own unit tests without Python (ctest)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_cpp_core_builds_and_passes_ctest(tmp_path: pathlib.Path) -> None:
    cmake = shutil.which("cmake")
    ctest = shutil.which("ctest")
    assert cmake and ctest, "cmake/ctest must be installed (pip install '.[test]' brings them)"
    build = tmp_path / "build"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), *generator, "-DHKRT_BUILD_TESTS=ON", "-DHKRT_BUILD_PYTHON=OFF"],
        capture_output=True,
        text=True,
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compile_ = subprocess.run([cmake, "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    run = subprocess.run([ctest, "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100% tests passed" in run.stdout
