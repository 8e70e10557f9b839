"""`python -m garm_provider_lxd`."""

import sys

from .cli import main

sys.exit(main())
