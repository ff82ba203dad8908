"""`python -m webhook` is the same CLI as `airflow-pod-webhook`."""

import sys

from webhook.cli import main

sys.exit(main())
