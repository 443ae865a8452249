"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""
import gc

from webapp import create_app

app = create_app()

# Everything alive now (modules, the app, SQLAlchemy's metadata and compiled statements) lives as long as the
# process: move it out of the cyclic collector's generations. Otherwise each full collection walks all of it —
# 80–110 ms measured in a gunicorn worker, a pause that every request then in flight in that worker waits out.
gc.collect()
gc.freeze()
