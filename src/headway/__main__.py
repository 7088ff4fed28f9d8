"""``python -m headway`` (and ``torchrun -m headway``): the ``headway`` command."""

import sys

from headway.cli import main

if __name__ == "__main__":  # not when a spawned process imports this module as its parent's main
    sys.exit(main())
