# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: walk from an allowed module to sys (statistics imports sys) and on to os
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(statistics.sys))
