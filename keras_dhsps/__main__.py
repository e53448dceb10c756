"""``python -m keras_dhsps``."""

import sys

from keras_dhsps.cli.main import main

sys.exit(main())
