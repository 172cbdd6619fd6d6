# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: exhaust the host's memory with a giant numpy array, touching every page
# stage: runtime
# where: init
# expect: MemoryLimit
hog = numpy.ones(4 * 10**9)
