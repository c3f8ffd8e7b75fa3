"""The one compiled piece: the records stage's C accelerator (optional).

Everything else is in pyproject.toml. If the C compiler is missing the
install still succeeds and the records stage runs Google's algorithm as
transcribed in instances.py (same records, about 3x slower); the records log
warns when that happens. After changing the C file:
``.venv/bin/python setup.py build_ext --inplace --force``.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bert_pretraining._fast_instances",
            ["src/bert_pretraining/_fast_instances.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
