"""The feature store: versioned feature definitions with full history, over REST and CLI.

``models.py`` holds the request/response shapes and the completeness rule, ``store.py`` the
storage port and its SQL adapter, ``service.py`` the rules (versions, deprecation, lineage
resolution), ``routes.py`` the REST controller, ``cli.py`` the ``modelyard features`` commands
and ``client.py`` the HTTP client they use against a running control plane.
"""
