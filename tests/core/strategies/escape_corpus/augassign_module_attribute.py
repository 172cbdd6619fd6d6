# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: rewrite a module attribute with augmented assignment (now compiled, not refused)
# stage: runtime
# where: init
# expect: ForbiddenOperation
import collections

collections.abc += 1
