import gc
import sys

from .cli import main

# Importing torch leaves ~180,000 objects that the interpreter's shutdown would garbage-collect several
# times over (docs/performance.md has the cost). Frozen, they are left to plain deallocation:
# the same exit, atexit handlers and flushes included, only sooner. Here, not in main(), so that a
# long-lived caller of main() (the tests) keeps collecting its own garbage.
gc.freeze()
sys.exit(main())
