"""The ``talkplatform-agents`` command: the only place that reads the environment."""

import os

# Before numpy is first imported (by the synthetic participants): OpenBLAS's helper threads
# spin-wait on each other, and on a busy two-core machine one synthetic user's marker
# decoder took a whole core that way (a 960-sample product gains nothing from threads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
