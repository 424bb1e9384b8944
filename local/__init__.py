"""The local stack behind ``make dev``. Its tools run from the repository root, where the shared
layer is not importable: putting it on ``sys.path`` here lets them use ``planguard`` as the functions do.
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent / "layers" / "common"))
