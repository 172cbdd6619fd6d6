# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: write a file through numpy.save
# stage: refused
# where: init
# expect: ForbiddenOperation
numpy.save("@MARKER@", numpy.zeros(3))
