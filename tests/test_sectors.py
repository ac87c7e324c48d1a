"""Sectors come from the input, else the registry, else name rules, else stay unknown."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pipeline.errors import ValidationError
from pipeline.paths import PROJECT_ROOT
from pipeline.records import SECTORS
from pipeline.sectors import SectorRegistry, closest_sector, default_registry, sector_from_name

REAL_DEV = PROJECT_ROOT.parent / "shared" / "labelled" / "real_dev.jsonl"

SEED_SECTORS = {
    "Chicago Department of Public Health": "public_health",
    "NYC Department of Health and Mental Hygiene": "public_health",
    "Providence Center for Outcomes Research and Education": "academic_research",
    "University of Vermont": "academic_research",
    "Center for Health Care Services": "behavioral_health",
    "Public Health Seattle & King County": "public_health",
}


@pytest.mark.parametrize(("organization", "sector"), SEED_SECTORS.items())
def test_seed_organizations_are_in_the_registry(organization, sector):
    assert default_registry().lookup(organization) == sector


def test_registry_matches_names_loosely_but_not_partially():
    registry = default_registry()
    assert registry.lookup("public health – seattle and king county") == "public_health"
    assert registry.lookup("Healthix (New York)") == "data_intermediary"
    assert registry.lookup("AISP") == "academic_research"
    assert registry.lookup("Seattle") == ""


@pytest.mark.skipif(not REAL_DEV.is_file(), reason="shared labelled data absent")
def test_registry_covers_the_labelled_organizations_with_their_sector():
    votes: dict[str, Counter[str]] = {}
    for line in REAL_DEV.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["organization"].strip() and record["sector"]:
            votes.setdefault(record["organization"].strip(), Counter())[record["sector"]] += 1
    registry = default_registry()
    for organization, counts in votes.items():
        sector = registry.lookup(organization)
        assert sector in counts, organization
        if len(counts) == 1 or counts.most_common(2)[0][1] > counts.most_common(2)[1][1]:
            assert sector == counts.most_common(1)[0][0], organization


@pytest.mark.parametrize(
    ("name", "sector"),
    [
        ("Springfield Department of Public Health", "public_health"),
        ("Lake County Health Department", "public_health"),
        ("State University of Somewhere", "academic_research"),
        ("Riverside Community College", "academic_research"),
        ("St. Mary's Hospital", "health_care"),
        ("Valley Health System", "health_care"),
        ("Eastside Clinic", "health_care"),
        ("Metro Housing Authority", "housing"),
        ("Pine County Sheriff's Office", "criminal_justice"),
        ("Pine County Jail", "criminal_justice"),
        ("Oakland Police Department", "criminal_justice"),
        ("Superior Court of Marin", "criminal_justice"),
        ("Lincoln Elementary School", "education"),
        ("Smith Family Foundation", "philanthropy"),
        ("Northside Behavioral Health", "behavioral_health"),
        ("Mental Health America of Ohio", "behavioral_health"),
        ("Allen County Department of Human Services", "social_services"),
        ("Tri-State Health Information Exchange", "data_intermediary"),
        ("Regional HIE", "data_intermediary"),
        ("City of Springfield", "government"),
        ("Marion County", "government"),
        ("State of Ohio", "government"),
        ("UW School of Public Health", "academic_research"),
        ("Acme Widgets", ""),
    ],
)
def test_name_rules(name, sector):
    assert sector_from_name(name) == sector


def test_resolution_order_and_unknowns():
    registry = SectorRegistry.from_entries([("Acme Health Partners", ["Acme"], "other")])
    assert registry.resolve("Acme", "housing") == ("housing", "input")
    assert registry.resolve("Acme") == ("other", "registry")
    assert registry.resolve("Lake County Health Department") == ("public_health", "rule")
    assert registry.resolve("Blue Sky Partners") == ("", "unknown")
    assert registry.resolve("") == ("", "unknown")


def test_closest_sector_suggests_a_valid_one():
    assert closest_sector("public_heath") == "public_health"
    assert closest_sector("Criminal Justic") == "criminal_justice"
    assert closest_sector("zzz") is None


def test_registry_file_with_bad_sector_is_reported_by_row(tmp_path):
    path = tmp_path / "organizations.csv"
    path.write_text("organization,aliases,sector\nA,,housing\nB,,housng\nC,,\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        SectorRegistry.from_file(path)
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, "sector"), (4, "sector")]  # rows as the spreadsheet shows them
    assert "did you mean 'housing'?" in str(caught.value)


def test_shipped_registry_uses_only_the_vocabulary():
    assert set(default_registry().sectors.values()) <= set(SECTORS)
