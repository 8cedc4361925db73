"""azaguard: safety checks for patients on azathioprine, over FHIR R4."""

from __future__ import annotations

__version__ = "0.1.0"
