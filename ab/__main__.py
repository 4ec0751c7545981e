import sys

from ab.cli import main

sys.exit(main())
