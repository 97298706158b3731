import sys
from pathlib import Path

# The IAM/STS provider harness lives with the IAM tests; both suites use it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "iam"))

from iam_harness import env  # noqa: F401  (the fixture)
