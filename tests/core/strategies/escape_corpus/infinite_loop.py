# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: never return from a decision
# stage: runtime
# where: init
# expect: Timeout,CpuTimeLimit
while True:
    pass
