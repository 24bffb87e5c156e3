"""Grade-scale registry (contract B.3) and the file-name grade rule (runner §3.3)."""

from __future__ import annotations

import math

import pytest

from pytest_eng5.contracts import (
    GRADE_SCALES,
    get_scale,
    grade_from_filename,
    grade_index,
    list_available_scales,
    validate_grade_for_scale,
)


def test_registry_holds_exactly_the_three_contract_scales() -> None:
    assert list_available_scales() == [
        "eng5_np_legacy_9_step",
        "eng5_np_national_9_step",
        "swedish_8_anchor",
    ]


@pytest.mark.parametrize(
    ("scale_id", "display_name", "grades", "below"),
    [
        (
            "swedish_8_anchor",
            "Swedish National Exam (8-anchor)",
            ("F", "E", "D", "D+", "C", "C+", "B", "A"),
            None,
        ),
        (
            "eng5_np_legacy_9_step",
            "ENG5 NP Legacy (9-step)",
            ("F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A"),
            "F",
        ),
        (
            "eng5_np_national_9_step",
            "ENG5 NP National (9-step)",
            ("1", "2", "3", "4", "5", "6", "7", "8", "9"),
            "0",
        ),
    ],
)
def test_scale_definitions_match_contract(
    scale_id: str, display_name: str, grades: tuple[str, ...], below: str | None
) -> None:
    scale = get_scale(scale_id)

    assert scale.scale_id == scale_id
    assert scale.display_name == display_name
    assert scale.grades == grades
    assert scale.below_lowest_grade == below
    assert scale.allows_below_lowest == (below is not None)
    assert set(scale.priors) == set(grades)
    assert math.isclose(sum(scale.priors.values()), 1.0)


def test_swedish_priors_are_the_historical_ones() -> None:
    priors = GRADE_SCALES["swedish_8_anchor"].priors

    assert priors["C"] == 0.25
    assert priors["F"] == 0.02
    assert priors["D+"] == 0.20


def test_nine_step_priors_are_uniform() -> None:
    for scale_id in ("eng5_np_legacy_9_step", "eng5_np_national_9_step"):
        assert all(math.isclose(p, 1 / 9) for p in GRADE_SCALES[scale_id].priors.values())


def test_unknown_scale_message_is_huleedus() -> None:
    with pytest.raises(
        ValueError, match=r"^Unknown grade scale 'eng5_np_legacy_national_exam'\."
    ) as caught:
        get_scale("eng5_np_legacy_national_exam")

    assert str(caught.value).endswith(
        "Available scales: eng5_np_legacy_9_step, eng5_np_national_9_step, swedish_8_anchor"
    )


@pytest.mark.parametrize(
    ("grade", "scale_id", "valid"),
    [
        ("F+", "eng5_np_legacy_9_step", True),
        ("F", "eng5_np_legacy_9_step", True),  # below-lowest, not an anchor grade
        ("e+", "eng5_np_legacy_9_step", False),  # case-sensitive
        ("E", "eng5_np_legacy_9_step", False),
        ("D+", "swedish_8_anchor", True),
        ("D-", "swedish_8_anchor", False),
        ("U", "swedish_8_anchor", False),
        ("0", "eng5_np_national_9_step", True),
        ("10", "eng5_np_national_9_step", False),
        ("A", "eng5_np_national_9_step", False),
    ],
)
def test_validate_grade_for_scale(grade: str, scale_id: str, valid: bool) -> None:
    assert validate_grade_for_scale(grade, scale_id) is valid


def test_validate_grade_for_unknown_scale_raises() -> None:
    with pytest.raises(ValueError, match="Unknown grade scale"):
        validate_grade_for_scale("A", "nope")


@pytest.mark.parametrize(
    ("grade", "scale_id", "index"),
    [
        ("F+", "eng5_np_legacy_9_step", 0),
        ("A", "eng5_np_legacy_9_step", 8),
        ("F", "eng5_np_legacy_9_step", -1),
        ("F", "swedish_8_anchor", 0),
        ("D+", "swedish_8_anchor", 3),
        ("0", "eng5_np_national_9_step", -1),
        ("9", "eng5_np_national_9_step", 8),
    ],
)
def test_grade_index(grade: str, scale_id: str, index: int) -> None:
    assert grade_index(grade, scale_id) == index


def test_grade_index_rejects_foreign_grade() -> None:
    with pytest.raises(
        ValueError, match=r"Grade 'E' is not valid for scale 'eng5_np_legacy_9_step'"
    ):
        grade_index("E", "eng5_np_legacy_9_step")


@pytest.mark.parametrize(
    ("name", "grade"),
    [
        ("A1.docx", "A"),
        ("F+2.docx", "F+"),
        ("c-.docx", "C-"),
        ("anchor_essay_eng_5_17_vt_003_E-.docx", "E-"),
        ("notes_misc.txt", "MISC"),
        ("anchors/sub_dir/essay_B12.docx", "B"),
        ("essay_ d+ 3.docx", "D+"),
    ],
)
def test_grade_from_filename(name: str, grade: str) -> None:
    assert grade_from_filename(name) == grade


@pytest.mark.parametrize("name", ["123.docx", "anchor_007.docx", "anchor_.docx", "x_ 12.txt"])
def test_grade_from_filename_without_grade_raises(name: str) -> None:
    with pytest.raises(ValueError, match="No grade can be read"):
        grade_from_filename(name)
