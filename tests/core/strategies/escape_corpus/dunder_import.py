# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach os through __import__ without an import statement
# stage: refused
# where: init
# expect: StrategyCodeError
__import__("os").system("touch @MARKER@")
