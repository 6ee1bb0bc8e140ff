"""pytest collects the doctests of the harness modules, but not the locust files (importing
locust monkey-patches the process for gevent) nor ``__main__``."""

collect_ignore = ["locust", "__main__.py"]
