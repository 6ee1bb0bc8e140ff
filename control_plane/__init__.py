"""The modelyard control plane: a Litestar REST service that owns the platform's state.

Each feature is a package (``models.py`` msgspec shapes, ``store.py`` Protocol + SQLAlchemy
implementation, ``service.py`` rules, ``routes.py`` thin controller). ``app.py`` is the only
module that imports every feature: it builds the services from the settings and hands them to
the controllers through Litestar's dependency injection.
"""
