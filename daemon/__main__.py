"""``python -m vigil``: the same as the ``vigil`` command; service units use this form
so that they name the interpreter of the environment vigil is installed in."""

import sys

from vigil._cli.main import main

sys.exit(main())
