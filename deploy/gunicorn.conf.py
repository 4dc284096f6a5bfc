"""gunicorn settings for production, behind nginx (deploy/nginx.conf). See docs/deployment.md.

    .venv/bin/gunicorn -c deploy/gunicorn.conf.py

Each setting below that depends on the machine is read from a GUNICORN_* environment variable. The Django
side (DJANGO_DEBUG=0, DJANGO_SECRET_KEY, DATABASE_URL, DJANGO_NUM_PROXIES=1, ...) comes from the environment too.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

wsgi_app = "issue_tracker.wsgi:application"
chdir = str(ROOT)

# Where nginx's `upstream tracker` points: 127.0.0.1:PORT, or unix:/run/tracker/gunicorn.sock.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
backlog = 2048

# Sync workers: one request at a time each, which is safe only because nginx hands them whole requests
# and takes whole answers. 2 x cores + 1 is the usual start; the database is usually the limit.
worker_class = "sync"
workers = int(os.environ.get("GUNICORN_WORKERS") or 2 * (os.cpu_count() or 1) + 1)
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)  # a request running longer: the worker is restarted
graceful_timeout = 30  # on SIGTERM / SIGHUP, running requests get this long to finish
max_requests = 5000  # recycle workers now and then (slow leaks), at staggered moments
max_requests_jitter = 500
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"  # the workers' heartbeat files, off a possibly slow disk

# The proxy. Only these addresses may set X-Forwarded-Proto (the scheme gunicorn reports); nginx replaces
# whatever the client sent. Unix-socket connections are always trusted. Only X-Forwarded-Proto counts as a
# secure-scheme header: nginx removes X-Forwarded-Ssl and X-Forwarded-Protocol.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# nginx refuses request and header lines over 8 KB (414, 431, in JSON); gunicorn must accept anything nginx
# lets through, or the client gets gunicorn's plain-text 400. 8190 is gunicorn's maximum line.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 32768  # nginx bounds the total (4 x 8 KB), not the count

# Logs on stdout/stderr (journald, docker) unless told otherwise. The access log's first field is the client
# address as nginx saw it (X-Forwarded-For); the last one the time taken, in ms.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%({x-forwarded-for}i)s - %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
proc_name = "issue-tracker"

# gunicorn's control socket (gunicornc) defaults to one path per user: two instances would share it.
# Set GUNICORN_CONTROL_SOCKET to a path of this instance's own to use it.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
