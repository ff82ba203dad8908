"""Make the repository importable when the package is not installed into the venv."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    # pyproject has no pytest pythonpath, and `webhook` may not be pip-installed yet.
    sys.path.insert(0, str(_ROOT))
