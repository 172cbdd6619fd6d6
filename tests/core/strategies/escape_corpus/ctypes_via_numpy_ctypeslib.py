# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach ctypes as an attribute of numpy.ctypeslib and open a Unix socket
# stage: refused
# where: init
# expect: ForbiddenOperation
libc = numpy.ctypeslib.ctypes.CDLL(None)
raise ValueError(str(libc.socket(1, 1, 0)))
