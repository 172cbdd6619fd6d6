# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach object through mro() without dunder names, then its subclasses
# stage: refused
# where: init
# expect: ForbiddenOperation
base = int.mro()[-1]
raise ValueError(str(base))
