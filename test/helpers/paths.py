"""Where things are, independent of the directory pytest runs from or the test file's depth."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_DATA = REPO / "test" / "data"
