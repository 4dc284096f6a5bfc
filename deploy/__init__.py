"""Production deployment files: nginx.conf (rendered by render_nginx.py) and gunicorn.conf.py."""
