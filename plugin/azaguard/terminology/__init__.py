"""Terminology: the one place that answers "which of our concepts is this CodeableConcept or text?".

Drugs to ingredients, vaccines to live / not live / ambiguous, conditions to infection classes, backed by
the value sets in `mappings/` (and optionally a FHIR terminology server). Rules ask this package; they never
compare codes or names themselves.
"""
