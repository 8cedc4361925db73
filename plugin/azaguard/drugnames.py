"""A medicine's name as a clinician writes it in a sentence, from the name a record carries.

RxNorm names (what EHRs and the CDS Hooks sandbox put in `display` and `text`) are built for machines:
"Allopurinol 100 MG Oral Tablet", "Febuxostat 40 MG Oral Tablet [Uloric]". In action text a clinician
writes "allopurinol 100 mg tablets", "Uloric 40 mg tablets". Only names in RxNorm's own shape are
rewritten (an upper-case strength unit or a known RxNorm dose form); anything else is the record's words,
unchanged. Evidence keeps the record's text as recorded: this is wording only.
"""

from __future__ import annotations

import re

# RxNorm dose forms (longest first) -> how a clinician names the product in the plural.
_DOSE_FORMS = (
    ("Delayed Release Oral Capsule", "delayed-release capsules"),
    ("Delayed Release Oral Tablet", "delayed-release tablets"),
    ("Extended Release Oral Capsule", "extended-release capsules"),
    ("Extended Release Oral Tablet", "extended-release tablets"),
    ("Disintegrating Oral Tablet", "orally disintegrating tablets"),
    ("Chewable Tablet", "chewable tablets"),
    ("Effervescent Oral Tablet", "effervescent tablets"),
    ("Oral Tablet", "tablets"),
    ("Oral Capsule", "capsules"),
    ("Oral Suspension", "oral suspension"),
    ("Oral Solution", "oral solution"),
    ("Injectable Solution", "injection"),
    ("Injectable Suspension", "injection"),
    ("Injection", "injection"),
    ("Prefilled Syringe", "prefilled syringe"),
    ("Topical Cream", "cream"),
    ("Topical Ointment", "ointment"),
    ("Pill", "tablets or capsules"),
)
_UNITS = {"MG": "mg", "MCG": "micrograms", "UG": "micrograms", "G": "g", "ML": "mL", "UNT": "units",
          "MEQ": "mEq", "MMOL": "mmol", "%": "%"}
_STRENGTH = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) (MG|MCG|UG|G|ML|UNT|MEQ|MMOL)(?:/(ML|MG|G|HR|ACTUAT))?\b")
_BRAND = re.compile(r"\s*\[([^\]]+)\]\s*$")
_DURATION = re.compile(r"^\d+ HR ")


def clinical_name(name: str) -> str:
    """'Allopurinol 100 MG Oral Tablet' -> 'allopurinol 100 mg tablets'; 'Febuxostat 40 MG Oral Tablet [Uloric]'
    -> 'Uloric 40 mg tablets'; a name not in RxNorm's shape is returned as it is."""
    text = " ".join(name.split())
    brand_match = _BRAND.search(text)
    body = text[: brand_match.start()] if brand_match else text
    form_words = next(((f, w) for f, w in _DOSE_FORMS if body.endswith(" " + f)), None)
    if not _STRENGTH.search(body) and form_words is None:
        return name  # not an RxNorm name: the record's words
    form = ""
    if form_words is not None:
        body, form = body[: -len(form_words[0]) - 1], form_words[1]
    body = _DURATION.sub("", body)
    body = _STRENGTH.sub(_unit, body)
    if brand_match:
        # "Febuxostat 40 MG [Uloric]": the brand names the product; its strengths stay.
        strengths = " / ".join(m.group(0) for m in re.finditer(r"\d+(?:\.\d+)? [a-zA-Z/]+", body))
        body = f"{brand_match.group(1)} {strengths}".strip()
    else:
        body = _lower_ingredients(body)
    return f"{body} {form}".strip()


def _unit(m: re.Match[str]) -> str:
    per = f"/{_UNITS.get(m.group(3), m.group(3).lower())}" if m.group(3) else ""
    return f"{m.group(1)} {_UNITS[m.group(2)]}{per}"


def _lower_ingredients(body: str) -> str:
    """Ingredient names are common nouns: lower case, except words written in capitals inside (e.g. 'Ty21a')."""
    return " ".join(w.lower() if w.isalpha() and w[1:].islower() else w for w in body.split(" "))
