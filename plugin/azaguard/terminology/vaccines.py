"""Vaccines: live / not live / ambiguous / not a vaccine, however the product is coded or named.

CVX first (compared as codes: "3" is "03", any CVX system URI or OID); then other systems' codes
translated to CVX through the crosswalks in mappings (NDC by labeler-product, CPT, SNOMED, RxNorm);
then brand names (each pointing at its CVX); then generic names. Two readings of one product: the most
restrictive wins (live, then ambiguous, then not live). A vaccine nothing classifies is ambiguous.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from msgspec import Struct, field

from azaguard.mappings import Mappings
from azaguard.terminology._common import (
    NamePattern,
    Patterns,
    coded,
    name_alternation,
    name_key,
    ndc_product,
    system_names,
)
from azaguard.terminology.drugs import drug_ingredients

if TYPE_CHECKING:
    from azaguard.fhirtypes.concept import Concept

VaccineKind = Literal["live", "not-live", "ambiguous", "not-a-vaccine"]
_RESTRICTIVENESS: dict[VaccineKind, int] = {"live": 0, "ambiguous": 1, "not-live": 2, "not-a-vaccine": 3}


class VaccineClass(Struct, frozen=True):
    kind: VaccineKind
    name: str  # the product as we name it ("MMR", or the record's own label)
    basis: str  # "CVX 03, live list", "NDC 00006-4681-00 -> CVX 03", "brand 'Shingrix' -> CVX 187", ...
    by_name: bool = False
    cvx: str | None = None


def cvx_key(code: str) -> str:
    """CVX codes compare as codes: leading zeros and spaces do not count ('3' == '03')."""
    stripped = code.strip().lstrip("0")
    return stripped or "0"


class _VaccineIndex(Struct):
    systems: dict[str, str]
    by_cvx: dict[str, tuple[VaccineKind, str, str]]  # key -> (kind, name, CVX as listed)
    crosswalk: dict[tuple[str, str], str]  # (system name, code) -> CVX
    brands: NamePattern | None
    cvx_by_brand: dict[str, str]
    overrides: Patterns
    live: Patterns
    not_live: Patterns
    vaccine_words: Patterns
    not_vaccine: Patterns
    atc_vaccines: tuple[str, ...]
    atc_not_vaccines: tuple[str, ...]
    passive: Patterns
    cache: dict[tuple[Concept, bool], VaccineClass] = field(default_factory=dict)


def _build(m: Mappings) -> _VaccineIndex:
    v = m.vaccines
    by_cvx: dict[str, tuple[VaccineKind, str, str]] = {}
    for kind, table in (("live", v.live), ("not-live", v.not_live), ("ambiguous", v.ambiguous),
                        ("not-a-vaccine", v.not_vaccines.codes)):
        for code, name in table.items():
            by_cvx[cvx_key(code)] = (kind, name, code)  # type: ignore[assignment]
    cw = v.crosswalks
    crosswalk: dict[tuple[str, str], str] = {}
    for ndc, cvx in cw.ndc.items():
        crosswalk[("ndc", ndc.replace("-", ""))] = cvx
    for system, table in (("cpt", cw.cpt), ("sct", cw.snomed), ("rxnorm", cw.rxnorm), ("atc", cw.atc)):
        for code, cvx in table.items():
            crosswalk[(system, code)] = cvx

    names = v.name_patterns
    return _VaccineIndex(
        systems=system_names(m),
        by_cvx=by_cvx,
        crosswalk=crosswalk,
        brands=name_alternation(v.brands.cvx_by_brand),
        cvx_by_brand={name_key(b): c for b, c in v.brands.cvx_by_brand.items()},
        overrides=Patterns(names.not_live_overrides),
        live=Patterns(names.live),
        not_live=Patterns(names.not_live),
        vaccine_words=Patterns(names.vaccine_words),
        not_vaccine=Patterns(names.not_vaccine),
        atc_vaccines=tuple(p.upper() for p in cw.atc_vaccine_prefixes),
        atc_not_vaccines=tuple(p.upper() for p in cw.atc_not_vaccine_prefixes),
        passive=Patterns(names.passive),
    )


def vaccine_class(concept: Concept, m: Mappings, *, is_vaccine: bool = False) -> VaccineClass:
    """Classify a product. `is_vaccine`: the resource itself says it is a vaccine (an Immunization), so an
    unrecognised product is ambiguous rather than 'not a vaccine'. Memoised."""
    index = m.derived(_build)
    key = (concept, is_vaccine)
    found = index.cache.get(key)
    if found is None:
        found = _classify(concept, index, is_vaccine)
        if len(index.cache) > 50_000:
            index.cache.clear()
        index.cache[key] = found
    return found


def is_vaccine_concept(concept: Concept, m: Mappings) -> bool:
    """Whether an order's product is a vaccine at all. A vaccine code (CVX, or NDC/CPT/SNOMED/RxNorm through
    the crosswalks) decides; a reading by name alone yields to a drug we recognise, so "azathioprine: hold
    before any vaccine" stays an azathioprine order."""
    found = vaccine_class(concept, m)
    if found.kind == "not-a-vaccine":
        return False
    return not (found.by_name and drug_ingredients(concept, m).hits)


def _most_restrictive(found: list[VaccineClass]) -> VaccineClass:
    return min(found, key=lambda c: _RESTRICTIVENESS[c.kind])


def _from_cvx(code: str, index: _VaccineIndex, label: str, via: str = "") -> VaccineClass:
    listed = index.by_cvx.get(cvx_key(code))
    if listed is None:
        return VaccineClass("ambiguous", label, f"{via}CVX {code} is in no vaccine list", cvx=code)
    kind, name, as_listed = listed
    what = {"live": "live list", "not-live": "not live", "ambiguous": "unspecified product",
            "not-a-vaccine": "an immune globulin or monoclonal antibody, not a vaccine"}[kind]
    return VaccineClass(kind, name, f"{via}CVX {as_listed}, {what}", cvx=as_listed)


def _classify(concept: Concept, index: _VaccineIndex, is_vaccine: bool) -> VaccineClass:
    label = concept.label
    codes = coded(concept, index.systems)
    cvx = [code for system, code in codes if system == "cvx"]
    if cvx:
        return _most_restrictive([_from_cvx(c, index, label) for c in sorted(cvx)])
    mapped: list[VaccineClass] = []
    not_vaccine_atc: str | None = None
    for system, code in codes:
        lookup = ndc_product(code) if system == "ndc" else code.upper() if system == "atc" else code
        target = index.crosswalk.get((system, lookup)) if lookup else None
        if target is not None:
            via = f"{system.upper() if system != 'sct' else 'SNOMED'} {code} -> "
            mapped.append(_from_cvx(target, index, label, via))
        elif system == "atc" and lookup and lookup.startswith(index.atc_vaccines):
            mapped.append(VaccineClass("ambiguous", label, f"ATC {code} is a vaccine (J07) of no listed product"))
        elif system == "atc" and lookup and lookup.startswith(index.atc_not_vaccines):
            not_vaccine_atc = code
    if mapped:
        return _most_restrictive(mapped)
    if not_vaccine_atc is not None and not is_vaccine:
        return VaccineClass("not-a-vaccine", label, f"ATC {not_vaccine_atc}: an immune serum or immunoglobulin")
    names = concept.names
    if index.brands is not None:
        brands = [m.group(0) for text in names for m in index.brands.finditer(text)]
        if brands:
            found = [
                _from_cvx(index.cvx_by_brand[name_key(b)], index, label, f"brand {b!r} -> ")
                for b in dict.fromkeys(brands)
            ]
            best = _most_restrictive(found)
            return VaccineClass(best.kind, label, best.basis, by_name=True, cvx=best.cvx)
    vaccine_word = index.vaccine_words.any_in(names)
    if not vaccine_word and index.passive.any_in(names):
        # VariZIG, rabies immune globulin, nirsevimab: antibodies, never a live organism (even as an Immunization).
        return VaccineClass("not-a-vaccine", label, "an immune globulin or monoclonal antibody, not a vaccine",
                            by_name=True)
    if not vaccine_word and index.not_vaccine.any_in(names):
        # "Measles IgG antibody", "VariZIG": a test or an immune globulin, not a vaccine product.
        if is_vaccine:
            return VaccineClass("ambiguous", label, "recorded as a vaccine but named like a test or an immune "
                                "globulin", by_name=True)
        return VaccineClass("not-a-vaccine", label, "a laboratory test or immune globulin, not a vaccine")
    for kind, patterns in (("not-live", index.overrides), ("live", index.live), ("not-live", index.not_live)):
        for pattern in patterns.candidates(names):
            hit = next((match for n in names if (match := pattern.search(n))), None)
            if hit is not None:
                basis = f"no vaccine code; matched by name only ({hit.group(0)!r})"
                return VaccineClass(kind, label, basis, by_name=True)  # type: ignore[arg-type]
    if is_vaccine or vaccine_word:
        return VaccineClass("ambiguous", label, "no vaccine code; product unidentifiable by name", by_name=True)
    return VaccineClass("not-a-vaccine", label, "not a vaccine")
