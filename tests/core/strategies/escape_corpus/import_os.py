# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: import os and run a shell command that writes a file
# stage: refused
# where: init
# expect: ForbiddenOperation
import os

os.system("touch @MARKER@")
