"""Operations: structured logs, metrics, health, the audit trail and the shared session store.

The shell's modules (web/, cds/, scan/, the CLI) use these; the functional core never does. Low
layers (the FHIR client, service.py) only `emit` events (azaguard/events.py, below them all), so a one-shot CLI
command never loads prometheus-client or a database driver it does not use.
"""
