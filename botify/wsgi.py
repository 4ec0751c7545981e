"""The WSGI application for any server: `botify.wsgi:app` (settings from the environment)."""

from botify.app import create_app

app = create_app()
