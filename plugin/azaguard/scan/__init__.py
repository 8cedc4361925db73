"""The population scan: which patients are on azathioprine, and which of them need action today.

discovery (who), runner (each patient through service.check_on_server over one pooled client, with a
shared back-off), results (DIR/results.ndjson, streamed, resumable), progress, report (HTML + CSV);
bulk (FHIR Bulk Data $export) and the NDJSON engines (in-process, Dask) over the same pure evaluation.
"""
