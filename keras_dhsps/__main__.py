"""``python -m keras_dhsps``."""

import sys

from keras_dhsps.cli import main

sys.exit(main())
