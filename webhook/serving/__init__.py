"""The HTTP edge: gunicorn, the WSGI app, the review endpoints, metrics and the decision log."""
