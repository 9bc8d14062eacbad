"""``python -m ablate.train [overrides]`` == ``ablate train [overrides]``."""
import sys

from ablate.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
