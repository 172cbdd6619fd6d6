# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: survive the time limit by catching every exception in an endless loop
# stage: runtime
# where: init
# expect: Timeout,CpuTimeLimit
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
