# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: crash the interpreter with unbounded recursion
# stage: runtime
# where: module
# expect: RecursionLimit
def dive(n):
    return dive(n + 1)


class Diver(Strategy):
    def init(self):
        dive(0)
