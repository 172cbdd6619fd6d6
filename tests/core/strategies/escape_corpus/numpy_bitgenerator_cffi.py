# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: a numpy bit generator hands out a cffi interface; its ffi opens libc and a Unix socket
# stage: refused
# where: init
# expect: ForbiddenOperation
ffi = numpy.random.PCG64().cffi.ffi
libc = ffi.dlopen(None)
raise ValueError(str(libc))
