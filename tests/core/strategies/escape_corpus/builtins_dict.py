# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: fetch open/__import__ from the __builtins__ mapping
# stage: refused
# where: init
# expect: StrategyCodeError
__builtins__["__import__"]("os").system("touch @MARKER@")
