"""`python -m npnet.train`, the documented training command; the trainer is `npnet.learning.train`."""

import sys

from .learning.train import main

if __name__ == "__main__":
    sys.exit(main())
