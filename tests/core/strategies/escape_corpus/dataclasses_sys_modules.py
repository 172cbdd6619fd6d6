# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach sys.modules through the newly allowed dataclasses module
# stage: refused
# where: init
# expect: ForbiddenOperation
import dataclasses

dataclasses.sys.modules["os"].system("touch @MARKER@")
