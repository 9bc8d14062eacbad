"""``python -m ablate ...`` == ``ablate ...``."""
from ablate.cli import entry

entry()
