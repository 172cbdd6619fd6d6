# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: classic sandbox escape: walk object.__subclasses__() to find a class holding os
# stage: refused
# where: init
# expect: StrategyCodeError
for cls in ().__class__.__bases__[0].__subclasses__():
    if cls.__name__ == "catch_warnings":
        cls()._module.__builtins__["__import__"]("os").system("touch @MARKER@")
