"""gunicorn settings for aiohttpdemo_polls, the ones `python -m aiohttpdemo_polls --workers N` uses.

Run from the project folder (command-line options override what this file sets):

    POLLS_CONFIG=config/polls.yaml gunicorn -c config/gunicorn.conf.py \
        --bind 127.0.0.1:8080 --workers 2 aiohttpdemo_polls.serve:create_runner

Bind address, log level, access log and uvloop come from the app's settings (POLLS_CONFIG
and POLLS_* variables), so the two ways of starting gunicorn cannot drift apart.
"""

import os

from aiohttpdemo_polls import serve, settings

_app_config = settings.load(os.environ.get("POLLS_CONFIG"), os.environ)
# gunicorn reads a config file's top-level names as its settings.
globals().update(serve.gunicorn_settings(_app_config))
