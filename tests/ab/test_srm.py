from __future__ import annotations

import re

import pytest

from ab.errors import ABInputError
from ab.srm import parse_split, srm_check


def test_an_even_split_passes_and_a_skewed_one_fires() -> None:
    fine = srm_check({"C": 2013, "T1": 1987})
    assert not fine.mismatch and fine.p_value > 0.5
    skewed = srm_check({"C": 2200, "T1": 1800})
    assert skewed.mismatch and skewed.p_value < 1e-9
    assert "SAMPLE RATIO MISMATCH" in skewed.line()


def test_the_design_split_is_what_the_counts_are_checked_against() -> None:
    split = parse_split("C=60,T1=40", ["C", "T1"])
    assert split == pytest.approx({"C": 0.6, "T1": 0.4})
    assert not srm_check({"C": 2400, "T1": 1600}, split).mismatch
    assert srm_check({"C": 2000, "T1": 2000}, split).mismatch
    assert parse_split("1/1/2", ["C", "T1", "T2"]) == pytest.approx({"C": 0.25, "T1": 0.25, "T2": 0.5})


def test_an_arm_missing_from_the_logs_counts_as_zero_users() -> None:
    check = srm_check({"C": 1000}, {"C": 0.5, "T1": 0.5})
    assert check.observed == {"C": 1000, "T1": 0} and check.mismatch


def test_a_positional_split_names_c_t1_t2_as_the_named_one_and_an_arm_without_users_counts_zero() -> None:
    """`1/1/1` over logs of C and T1 was refused ("has 3 parts"), while `C=1,T1=1,T2=1` flagged the missing T2."""
    split = parse_split("1/1/1", ["C", "T1"])
    assert split == parse_split("C=1,T1=1,T2=1", ["C", "T1"]) == pytest.approx({"C": 1 / 3, "T1": 1 / 3, "T2": 1 / 3})
    check = srm_check({"C": 1000, "T1": 1000}, split)
    assert check.observed == {"C": 1000, "T1": 1000, "T2": 0} and check.mismatch


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("C=1,T1=0", "gives arm(s) T1 no positive share, yet the logs have users in them: every arm needs a positive"),
        ("0/1", "gives arm(s) C no positive share, yet the logs have users in them"),
        ("C=1,T1=1,T2=0", "gives arm(s) T2 no positive share: every arm of a design needs a positive share (drop an"),
        ("C=1e308,T1=1,T2=1e-20", "gives arm(s) T2 a share too small beside the largest to count: every arm of"),
        ("C=1e300,T1=1e-300", "gives arm(s) T1 a share too small beside the largest to count, yet the logs have"),
    ],
)
def test_every_arm_of_the_design_needs_a_positive_share(text: str, reason: str) -> None:
    """A zero share went through (`simulate --split 0/1` wrote logs of T1 alone); one that rounds to 0 beside the
    largest would have too."""
    with pytest.raises(ABInputError, match=re.escape(f"--split {text!r} {reason}")):
        parse_split(text, ["C", "T1"])


def test_an_arm_named_twice_in_a_split_is_refused() -> None:
    """The last share won: `C=50,T1=50,T1=10` checked the users against an 83% / 17% design and cried SRM."""
    with pytest.raises(ABInputError, match=re.escape("--split 'C=50,T1=50, T1=10' gives arm(s) T1 more than one")):
        parse_split("C=50,T1=50, T1=10", ["C", "T1"])


def test_shares_near_the_float_maximum_are_normalised_without_overflow() -> None:
    """Their sum was inf, so every share 0: "gives arm(s) C, T1 a zero share"."""
    assert parse_split("C=1e308,T1=1e308", ["C", "T1"]) == {"C": 0.5, "T1": 0.5}
    assert parse_split("1.5e308/1e308/5e307") == pytest.approx({"C": 0.5, "T1": 1 / 3, "T2": 1 / 6})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("C=50", "no share for arm"),
        ("50", "gives no share for arm(s) T1 seen in the logs"),
        ("C=a,T1=1", "is not like"),
        ("C=-1,T1=2", "gives arm(s) C no positive share"),
        ("C=50,T1", "is not like"),
        ("=50,T1=50", "is not like"),
        ("C=nan,T1=50", "not a finite number: 'nan'"),
        ("C=50,T1=inf", "not a finite number: 'inf'"),
        ("50/nan", "not a finite number: 'nan'"),
    ],
)
def test_a_bad_split_is_an_input_error(text: str, reason: str) -> None:
    with pytest.raises(ABInputError, match=re.escape(reason)):
        parse_split(text, ["C", "T1"])


def test_an_imbalance_significant_at_5pct_but_not_at_the_srm_threshold_is_no_mismatch() -> None:
    check = srm_check({"C": 2080, "T1": 1920})  # chi2 = 6.4, p = 0.011
    assert 0.001 < check.p_value < 0.05 and not check.mismatch
