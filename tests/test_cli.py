"""The command-line helpers: one parser of boolean flag values."""

import argparse

import pytest

from bert_pretraining.cli import add_bool_flag, str2bool


@pytest.mark.parametrize("spelling", ["true", "t", "1", "yes", "y"])
def test_true_in_any_case(spelling):
    for value in (spelling, spelling.upper(), spelling.capitalize(), f" {spelling} "):
        assert str2bool(value) is True


@pytest.mark.parametrize("spelling", ["false", "f", "0", "no", "n"])
def test_false_in_any_case(spelling):
    for value in (spelling, spelling.upper(), spelling.capitalize()):
        assert str2bool(value) is False


@pytest.mark.parametrize("value", ["", "2", "maybe", "truth", "on"])
def test_anything_else_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError, match="expected true or false"):
        str2bool(value)


def test_bool_flag_takes_absl_forms():
    parser = argparse.ArgumentParser()
    add_bool_flag(parser, "use_fp16", False, "")
    assert parser.parse_args([]).use_fp16 is False
    assert parser.parse_args(["--use_fp16"]).use_fp16 is True
    assert parser.parse_args(["--use_fp16=False"]).use_fp16 is False
    assert parser.parse_args(["--use_fp16", "YES"]).use_fp16 is True
    assert parser.parse_args(["--nouse_fp16"]).use_fp16 is False
