# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: grow memory step by step so no single allocation looks large
# stage: runtime
# where: init
# expect: MemoryLimit,Timeout,CpuTimeLimit
chunks = []
while True:
    chunks.append(numpy.ones(5 * 1024 * 1024))
