"""The sandbox patients checked once at the examples' time, for the patient's words."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from azaguard.mappings import Mappings, load_mappings
from azaguard.patient.content import PatientContent, load_patient_content, load_questionnaire
from azaguard.resources import ResourceSet
from azaguard.sandbox.patients import EXAMPLES_NOW, build_patients
from azaguard.service import CheckResult, check_resources

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    return load_mappings()


@pytest.fixture(scope="session")
def content() -> PatientContent:
    return load_patient_content()


@pytest.fixture(scope="session")
def questionnaire() -> dict[str, Any]:
    return load_questionnaire()


@pytest.fixture(scope="session")
def checked(mappings: Mappings) -> dict[str, CheckResult]:
    return {
        p.id: check_resources(ResourceSet.from_resources(p.resources), mappings=mappings, now=EXAMPLES_NOW)
        for p in build_patients(EXAMPLES_NOW)
    }


@pytest.fixture(scope="session")
def now() -> datetime:
    return EXAMPLES_NOW
