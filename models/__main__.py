"""Entry point of `python -m models`."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    try:  # importing LightFM, Optuna and matplotlib takes seconds: a Ctrl-C then is one line too
        from models.cli import main
    except KeyboardInterrupt:
        print("models: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
