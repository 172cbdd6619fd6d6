# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read the interpreter namespace with globals()/vars()
# stage: refused
# where: init
# expect: NameError
raise ValueError(str(globals()))
