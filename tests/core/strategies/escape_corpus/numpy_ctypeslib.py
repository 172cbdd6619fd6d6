# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach a C foreign function interface through numpy.ctypeslib / ndarray.ctypes
# stage: refused
# where: init
# expect: ForbiddenOperation
numpy.ctypeslib.load_library("libc", "/lib")
