"""Entry point of `python -m ab`."""

import sys

if __name__ == "__main__":
    try:  # importing pandas, scipy and matplotlib takes a second: a Ctrl-C then is one line too
        from ab.cli import main
    except KeyboardInterrupt:
        print("ab: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
