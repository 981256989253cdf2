"""What runs inside a worker: the runtime every feature's ``jobs.py`` builds on.

:mod:`app.worker.errors` turns the numeric core's errors into domain errors before they cross
the process boundary; :mod:`app.worker.deadline` is the wall-clock budget a job checks between
its stages.
"""
