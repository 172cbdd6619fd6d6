# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: thread bomb
# stage: refused
# where: init
# expect: ForbiddenOperation
import threading

while True:
    threading.Thread(target=lambda: None).start()
