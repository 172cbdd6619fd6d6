# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: run an endless loop at import time, before any method is called
# stage: refused
# where: module
# expect: Timeout,CpuTimeLimit
while True:
    pass
