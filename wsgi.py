"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""
import gc
import sys

from webapp import create_app
from webapp.config import ConfigError

# gunicorn's master stops ("App failed to load.") when a worker exits with this status, rather than booting
# workers that cannot start over and over; `flask` and `python` simply exit with it.
APP_LOAD_ERROR = 4

try:
    app = create_app()
except ConfigError as error:  # one line naming the setting, not a traceback
    print(f"Configuration error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(APP_LOAD_ERROR) from None

# Everything alive now (modules, the app, SQLAlchemy's metadata and compiled statements) lives as long as the
# process: move it out of the cyclic collector's generations. Otherwise each full collection walks all of it —
# 80–110 ms measured in a gunicorn worker, a pause that every request then in flight in that worker waits out.
gc.collect()
gc.freeze()
