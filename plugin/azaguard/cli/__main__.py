"""`python -m azaguard.cli ARGS`: the command line (the `azaguard` executable is console.py)."""

from azaguard.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
