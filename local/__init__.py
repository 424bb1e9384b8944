"""The local stack behind ``make dev``. Its tools run from the repository root, where the shared
layer is not importable: putting it on ``sys.path`` here lets them use ``planguard`` as the functions do.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: the one ROOT of local/ and tools/

sys.path.append(str(ROOT / "layers" / "common"))
