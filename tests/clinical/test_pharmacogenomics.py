"""TPMT and NUDT15 (CPIC 2018, 2024 update; clinical-rules.md §6, §8) however the result is sent.

Phenotype answers (LA25391-6 normal, LA10317-8 intermediate, LA9657-3 poor) on the TPMT phenotype code
79713-4 or the generic metaboliser-status code 53040-2 with the gene in a "gene studied" component
(48018-6) or in the text; genotypes (84413-4) read through CPIC allele function. The patient takes
azathioprine 50 mg twice daily.
"""

from __future__ import annotations

import pytest

from azaguard.findings import Finding
from tests.clinical.builders import Resource, azathioprine, coded_observation, for_rule, pgx_result
from tests.words import said

TPMT_PHENOTYPE, METABOLISER, GENOTYPE = "79713-4", "53040-2", "84413-4"
NORMAL, INTERMEDIATE, POOR = ("LA25391-6", "Normal metabolizer"), ("LA10317-8", "Intermediate metabolizer"), (
    "LA9657-3", "Poor metabolizer")


def tpmt(*resources: Resource) -> list[Finding]:
    return for_rule("tpmt", azathioprine(), *resources)


def tpmt_phenotype(answer: tuple[str, str], days_ago: float = 30) -> Resource:
    return coded_observation(TPMT_PHENOTYPE, answer[0], answer[1], days_ago=days_ago)


CASES = [
    ("NUDT15 poor (gene studied component)", [tpmt_phenotype(NORMAL), pgx_result(METABOLISER, gene="NUDT15",
                                                                               answer=POOR)],
     "nudt15-poor", "hold"),
    ("NUDT15 poor named only in the code text, no TPMT on file",
     [pgx_result(METABOLISER, answer=POOR, code_text="NUDT15 metabolizer phenotype")], "nudt15-poor", "hold"),
    ("TPMT normal, NUDT15 intermediate", [tpmt_phenotype(NORMAL), pgx_result(METABOLISER, gene="NUDT15",
                                                                            answer=INTERMEDIATE)],
     "nudt15-intermediate", "caution"),
    ("TPMT and NUDT15 both intermediate: 20-50 %", [tpmt_phenotype(INTERMEDIATE),
                                                    pgx_result(METABOLISER, gene="NUDT15", answer=INTERMEDIATE)],
     "tpmt-nudt15-intermediate", "caution"),
    ("TPMT genotype *3A/*3A (two no-function alleles)", [pgx_result(GENOTYPE, gene="TPMT", text="*3A/*3A")],
     "tpmt-poor", "hold"),
    ("NUDT15 genotype *1/*3 with TPMT normal", [tpmt_phenotype(NORMAL), pgx_result(GENOTYPE, text="NUDT15 *1/*3")],
     "nudt15-intermediate", "caution"),
    ("TPMT normal and NUDT15 *1/*1", [tpmt_phenotype(NORMAL), pgx_result(GENOTYPE, gene="NUDT15", text="*1/*1")],
     "tpmt-normal", "ok"),
    ("NUDT15 genotype of uncertain function *1/*5", [tpmt_phenotype(NORMAL),
                                                     pgx_result(GENOTYPE, gene="NUDT15", text="*1/*5")],
     "nudt15-unrecognised", "cannot-evaluate"),
    ("TPMT poor phenotype", [tpmt_phenotype(POOR)], "tpmt-poor", "hold"),
    ("NUDT15 normal but no TPMT result", [pgx_result(METABOLISER, gene="NUDT15", answer=NORMAL)],
     "tpmt-no-result", "cannot-evaluate"),
    ("TPMT normal dated next year (not evidence)", [tpmt_phenotype(NORMAL, days_ago=-365)],
     "tpmt-no-result", "cannot-evaluate"),
    ("metaboliser status naming no gene", [tpmt_phenotype(NORMAL), pgx_result(METABOLISER, answer=POOR)],
     "pgx-gene-unknown", "cannot-evaluate"),
]


@pytest.mark.parametrize(("situation", "resources", "code", "status"), CASES, ids=[c[0] for c in CASES])
def test_pharmacogenomics(situation: str, resources: list[Resource], code: str, status: str) -> None:
    found = tpmt(*resources)
    assert (found[0].code, str(found[0].status)) == (code, status), [(f.code, f.status) for f in found]


def test_poor_metaboliser_says_alternative_agent_as_a_hold_not_a_note() -> None:
    found = tpmt(tpmt_phenotype(NORMAL), pgx_result(METABOLISER, gene="NUDT15", answer=POOR))
    assert found[0].status == "hold"
    assert "non-thiopurine" in said(found[0]).detail and "non-malignant" in said(found[0]).detail
    assert "ok" not in {str(f.status) for f in found}


def test_both_intermediate_says_20_to_50_percent() -> None:
    found = tpmt(tpmt_phenotype(INTERMEDIATE), pgx_result(METABOLISER, gene="NUDT15", answer=INTERMEDIATE))
    assert "20-50 %" in said(found[0]).detail


@pytest.mark.parametrize("order", [0, 1])
def test_same_time_conflicting_tpmt_the_worse_decides_whatever_the_order(order: int) -> None:
    pair = [tpmt_phenotype(NORMAL), tpmt_phenotype(POOR)]
    if order:
        pair.reverse()
    assert tpmt(*pair)[0].code == "tpmt-poor"
