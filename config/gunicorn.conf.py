"""gunicorn settings for aiohttpdemo_polls (README: "Deployment"). Run from the project folder:

    POLLS_CONFIG=config/polls.yaml gunicorn -c config/gunicorn.conf.py \
        --bind 127.0.0.1:8080 --workers 2 aiohttpdemo_polls.main:create_app
"""

from aiohttpdemo_polls.logs import ACCESS_LOG_FORMAT

# aiohttp's own worker: each process runs an event loop and the app's async factory.
worker_class = "aiohttp.GunicornWebWorker"
bind = "127.0.0.1:8080"
workers = 2  # about one per core; see README for the PostgreSQL connection budget
# One Apache "combined" line per request on stdout (aiohttp's format codes).
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
# On SIGTERM a worker finishes requests in flight for 95% of this, as `python -m` does.
graceful_timeout = 10
# gunicorn >= 25.1 opens a control socket in ~/.gunicorn shared by every gunicorn on the
# machine; the app does not use it.
control_socket_disable = True
