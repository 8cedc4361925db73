"""The FHIR vocabulary every module speaks: references, CodeableConcepts, dates, units of time.

Pure (stdlib and msgspec only) and below everything else: the record, terminology, the rules, the
scan, the CDS service and the web app read FHIR through these, never by hand.

    reference.py   Reference: relative, absolute, versioned, contained ('#id'), urn:uuid / urn:oid, conditional
    concept.py     Code, Concept (a CodeableConcept reduced to what matching needs) and its one parser; a raw
                   CodeableConcept's codes read quickly (raw_codings)
    raw.py         a resource's decoded JSON as a type (RawObject, RawValue): the quick reads before it is read
    dates.py       FHIR date / dateTime / instant, partial dates read earliest or latest, one supported range
    timeunits.py   UCUM units of time (and their English words) in days, from mappings/units.json

A malformed value raises azaguard.errors.FhirDataError (a reader's data error), never ValueError.
"""
