"""The argparse types every CLI of the project shares."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from botify.arguments import bounded, output_folder, path_argument


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (float, "nan", "not a finite number: 'nan'"),  # NaN passed both comparisons
        (float, "inf", "not a finite number: 'inf'"),
        (float, "1.5", "1.5 is not in [0.0, 1.0]"),
        (int, "x", "not a number: 'x'"),
        (int, "-1", "-1 is not in [0, 1]"),
    ],
)
def test_bounded_refuses_what_is_not_a_number_in_range(kind, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bounded(kind, kind(0), kind(1))(text)


def test_bounded_keeps_a_value_in_range():
    assert bounded(float, 0.0, 1.0)("0.25") == 0.25


@pytest.mark.parametrize("text", ["", "  "])
def test_an_empty_path_is_refused_rather_than_read_as_the_current_folder(text):
    with pytest.raises(argparse.ArgumentTypeError, match="an empty path"):
        path_argument(text)
    assert path_argument("results") == Path("results")


def test_a_count_with_hundreds_of_digits_is_out_of_range_not_a_crash():
    """isfinite() of an int converts it to a float first: one of 400 digits raised OverflowError."""
    with pytest.raises(argparse.ArgumentTypeError, match="is not in"):
        bounded(int, 1, 10)("1" + "0" * 400)
    assert bounded(int, 0)("1" + "0" * 400) == 10**400


def test_an_output_folder_under_a_file_or_a_dangling_link_says_which(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{tmp_path / 'file'} is a file, not a folder$"):
        output_folder(str(tmp_path / "file" / "out"))
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{tmp_path / 'dangling'} is a link to nothing, not a"):
        output_folder(str(tmp_path / "dangling"))
    assert output_folder(str(tmp_path / "new" / "out")) == tmp_path / "new" / "out"
