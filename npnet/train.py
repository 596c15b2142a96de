"""`python -m npnet.train`, the documented training command; the trainer is `npnet.learning.imitation`."""

import sys

from .learning.imitation import main

if __name__ == "__main__":
    sys.exit(main())
