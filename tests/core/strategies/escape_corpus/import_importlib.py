# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: import os indirectly through importlib
# stage: refused
# where: init
# expect: ForbiddenOperation
import importlib

importlib.import_module("os").system("touch @MARKER@")
