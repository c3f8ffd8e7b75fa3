"""The one compiled piece: the records stage's inner loop (optional).

Everything else is in pyproject.toml. If the C compiler is missing the
install still succeeds and instances.py runs the same algorithm in Python
(slower); the records log warns when that happens.
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
