# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: write a file with open()
# stage: refused
# where: init
# expect: NameError
open("@MARKER@", "w").write("pwned")
