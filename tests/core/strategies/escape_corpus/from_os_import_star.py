# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: star import to pull everything from os
# stage: refused
# where: module
# expect: StrategyCodeError
from os import *
