# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: build a code object with compile()
# stage: refused
# where: init
# expect: NameError
code = compile("import os", "x", "exec")
