"""The vendored sentence-transformers tests and the shim are run by run.py in subprocesses, never collected here."""

collect_ignore = ["st_tests", "shim", "run.py", "standins.py", "vendor.py"]
