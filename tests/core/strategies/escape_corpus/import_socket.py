# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: open a network connection
# stage: refused
# where: init
# expect: ForbiddenOperation
import socket

socket.create_connection(("127.0.0.1", 80)).sendall(b"leak")
