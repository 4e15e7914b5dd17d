"""Build the C engine of the SMC-relevance rule; all package metadata is in pyproject.toml.

The engine's constants come from smctrace/match/rule.py (which imports only the
dependency-free smctrace.frame and smctrace.capture.formats): its C header is written
into the build directory before compiling, so the numbers exist in one place only.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "build" / "generated"


class BuildWithRuleHeader(build_ext):
    def run(self) -> None:
        sys.path.insert(0, str(HERE))
        from smctrace.match.rule import c_header

        GENERATED.mkdir(parents=True, exist_ok=True)
        (GENERATED / "smc_rule.h").write_text(c_header())
        super().run()


setup(
    cmdclass={"build_ext": BuildWithRuleHeader},
    ext_modules=[
        Extension(
            "smctrace.match._engine",
            ["smctrace/match/_engine.c"],
            include_dirs=[str(GENERATED), "smctrace/match"],
            depends=["smctrace/match/smc_match.h", "smctrace/match/rule.py"],
            extra_compile_args=["-O2", "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas"],
            optional=True,  # without a compiler smctrace falls back to the Python engine
        )
    ],
)
