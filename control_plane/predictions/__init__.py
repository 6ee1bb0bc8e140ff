"""The prediction log's control-plane side: read the records, take outcomes, join them.

``models.py`` holds the shapes, ``tables.py`` the ``outcomes`` table (the records' table is
:data:`modelyard.prediction_log.prediction_log`, written by the inference servers),
``store.py`` the storage port and its SQL adapter, ``service.py`` the rules and the read API
A/B testing and monitoring call (:meth:`PredictionService.labelled`), ``routes.py`` the REST
controller (``GET /v1/predictions``, ``POST /v1/feedback``), ``unpacker.py`` the background
task that unpacks the blocks servers ship (``prediction_log_block``) into records, and
``cli.py`` the ``modelyard predictions`` commands.
"""
