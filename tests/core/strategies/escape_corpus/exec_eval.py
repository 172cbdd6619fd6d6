# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: run a string as code with exec/eval
# stage: refused
# where: init
# expect: StrategyCodeError
exec("import os; os.system('touch @MARKER@')")
