# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: issue 13 step 3: use the ctypes the child already loaded to open PostgreSQL's Unix socket
# stage: refused
# where: init
# expect: ForbiddenOperation
ctypes = statistics.sys.modules["ctypes"]
libc = ctypes.CDLL(None)
fd = libc.socket(1, 1, 0)
address = ctypes.create_string_buffer(b"\x01\x00/tmp/.s.PGSQL.5432")
libc.connect(fd, address, 110)
