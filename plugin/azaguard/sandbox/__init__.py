"""The embedded sandbox: synthetic patients (patients.py) and the local FHIR server (server.py,
sekmet-fhir in its own venv, started through sekmet_launcher.py). Import the submodules directly;
this package imports nothing so that `azaguard` stays light."""
