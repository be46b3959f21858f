"""Presets are the paper plus named changes, each with its reason."""
import pytest

from medgan_lib.config import CPU, CPU_CHANGES, MEDGAN, MEDGAN_SMOKE, MEDGAN_SMOKE_CHANGES, PAPER, derive

DERIVED = {"preset", "notes", "image_size"}  # the name, the reasons, and a property of other fields


def test_cpu_differs_from_paper_in_exactly_the_fields_it_explains():
    paper, cpu = PAPER.to_dict(), CPU.to_dict()
    differing = {field for field in paper if paper[field] != cpu[field]} - DERIVED
    assert differing == set(CPU_CHANGES)
    assert all(len(reason) > 20 for _, reason in CPU_CHANGES.values())


def test_medgan_smoke_is_medgan_at_smoke_scale_in_exactly_the_fields_it_explains():
    medgan, small = MEDGAN.to_dict(), MEDGAN_SMOKE.to_dict()
    differing = {field for field in medgan if medgan[field] != small[field]} - DERIVED
    assert differing == set(MEDGAN_SMOKE_CHANGES)
    assert (MEDGAN_SMOKE.generator, MEDGAN_SMOKE.discriminator) == (MEDGAN.generator, MEDGAN.discriminator)
    assert MEDGAN_SMOKE.image_size == 32 and MEDGAN_SMOKE.epochs == 3


def test_every_change_is_named_in_the_notes_with_its_value():
    for field, (value, reason) in CPU_CHANGES.items():
        assert [note for note in CPU.notes if f"{field}={value!r}" in note and reason in note], field
    assert len(CPU.notes) == len({reason for _, reason in CPU_CHANGES.values()})  # each reason once


def test_derive_validates_the_changed_fields():
    with pytest.raises(ValueError, match="update_order"):
        derive("broken", PAPER, {"update_order": ("sometimes", "no such order")})
