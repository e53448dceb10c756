"""Where the tests find the repository and its committed fixtures."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
CONFIGS = os.path.join(REPO, "reproduce", "configs")
