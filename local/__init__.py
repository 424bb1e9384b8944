"""The local stack: Kinde stand-in, embedded DynamoDB, template-driven API gateway (``make dev``).

The tools here (``python -m local.dev``, ``local.invoke``, ``local.cli``) run from the repository
root, where the shared layer is not importable; putting it on ``sys.path`` once, here, lets them
use ``planguard`` (settings validation, the repository) exactly as the functions do.
"""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "common")
if _LAYER not in sys.path:
    sys.path.append(_LAYER)
