"""Batch prediction jobs: score a CSV/Parquet file or folder into a folder of result shards.

``models.py`` holds the shapes, ``schema.py`` what a model expects of its input, ``scoring.py``
the per-chunk scoring function (the same one the worker processes and Dask run),
``sources.py`` the streaming input, ``shards.py`` the committed output and its manifest,
``runner.py`` the job process (worker processes, progress, cancel, resume), ``store.py`` and
``service.py`` the job records and rules, ``routes.py`` the REST controller and ``cli.py`` the
``modelyard batch`` commands. ``docs/batch.md`` describes the design.
"""
