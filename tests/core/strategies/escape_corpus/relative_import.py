# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: relative import of a sibling module of the platform
# stage: refused
# where: module
# expect: ForbiddenOperation
from . import sandbox
