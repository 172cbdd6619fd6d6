# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: Series.apply on 'exec' with code as the data
# stage: refused
# where: init
# expect: ForbiddenOperation
pandas.Series(["import os; os.system('touch @MARKER@')"]).apply("exec")
