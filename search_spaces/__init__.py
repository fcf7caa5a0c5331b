"""The shipped space files (package data): ``xlt-sweep --space NAME`` finds ``NAME.yaml`` here
from any directory (``orchestrator.spacefile.find_space``)."""
