# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: write a file through ndarray.tofile
# stage: refused
# where: init
# expect: ForbiddenOperation
numpy.zeros(3).tofile("@MARKER@")
