# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: a built-in function's __self__ is the builtins module
# stage: refused
# where: init
# expect: StrategyCodeError
len.__self__.exec("import os")
