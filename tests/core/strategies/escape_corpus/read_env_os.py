# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read a secret from the environment and leak it in the error message
# stage: refused
# where: init
# expect: ForbiddenOperation
import os

raise ValueError(os.environ.get("@SECRET_ENV@", "no secret"))
