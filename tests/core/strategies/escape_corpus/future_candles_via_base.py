# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: look ahead: reach the candles after "now" through the memory behind a numpy view
# stage: runtime
# where: module
# expect: ForbiddenOperation
class Peek(Strategy):
    def should_long(self):
        return self.data.close.base[-1] > self.data.close[-1]
