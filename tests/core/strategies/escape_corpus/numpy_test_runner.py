# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: numpy.test() runs pytest and numpy's own test files
# stage: refused
# where: init
# expect: ForbiddenOperation
numpy.test()
