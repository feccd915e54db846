"""Copies cpp/ into the wheel as rnnx/_cpp, so `pip install rnnx` brings `rnnx cpp build` along.

Why a copy at build time rather than moving cpp/ into the package: cpp/ stays one ordinary CMake
project at the repository root (its README, `cmake -S cpp`, the C++ tests and every path in the
docs keep working), while the wheel still carries it as package data that
rnnx.cpp_build finds next to the installed package. Build outputs (cpp/build/) stay out.
Everything else about the package is declared in setup.cfg.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CPP = Path(__file__).resolve().parent / "cpp"
# Build trees and editor droppings never travel: cpp_build writes builds outside the wheel.
IGNORED = shutil.ignore_patterns("build", "build-*", "__pycache__", "*.pyc", ".*")


class build_py_with_cpp(build_py):
    def run(self) -> None:
        super().run()
        if not self.dry_run and (CPP / "CMakeLists.txt").is_file():
            target = Path(self.build_lib) / "rnnx" / "_cpp"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(CPP, target, ignore=IGNORED)


setup(cmdclass={"build_py": build_py_with_cpp})
