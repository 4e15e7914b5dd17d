"""Build the optional C prefilter; all package metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "smctrace.capture._scan",
            ["smctrace/capture/_scan.c"],
            extra_compile_args=["-O2"],
            optional=True,  # without a compiler smctrace falls back to the Python prefilter
        )
    ]
)
