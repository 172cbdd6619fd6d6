# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: start a process with subprocess
# stage: refused
# where: init
# expect: ForbiddenOperation
import subprocess

subprocess.run(["touch", "@MARKER@"])
