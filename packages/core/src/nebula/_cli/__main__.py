"""``python -m nebula._cli``: the ``nebula`` command."""

import sys

from nebula._cli import main

sys.exit(main())
