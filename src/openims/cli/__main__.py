"""``python -m openims.cli``."""

from openims.cli import main

main()
