"""A local web app over the restore pipeline: ``dfdnet-app`` or ``python -m dfdnet.app``.

The page (``static/``) and the HTTP API (``POST /api/restore``) run ``PhotoRestorer`` and
``VideoRestoration`` with ``RestoreOptions``, as ``test_FaceDict.py`` does; see docs/app.md.
Modules: ``settings`` (the server's options), ``sessions`` (per-session folders and jobs),
``service`` (the model, the queue and the restore jobs), ``server`` (the FastAPI app), ``cli``.
"""
