"""The patient's audience: the same findings in a patient's words, the leaflet's guidance, the check-in.

Pure functions (content and FHIR in, text and FHIR out); web/patient.py is the shell that serves them.
"""
