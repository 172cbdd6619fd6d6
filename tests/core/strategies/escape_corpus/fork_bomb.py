# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: fork bomb
# stage: refused
# where: init
# expect: ForbiddenOperation
import os

while True:
    os.fork()
