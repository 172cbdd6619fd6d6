# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: call a strategy method (compiled with plain self.name access) on a module, to read its submodule unguarded
# stage: runtime
# where: module
# expect: ForbiddenOperation
class Attempt(Strategy):
    def peek(self):
        return self.core

    def init(self):
        raise ValueError(str(Attempt.peek(pandas)))
