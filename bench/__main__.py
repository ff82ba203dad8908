"""`python -m bench`: see bench/__init__.py."""

import sys

if sys.argv[1:2] == ["audit"]:
    from bench.audit import main as audit_main

    sys.exit(audit_main(sys.argv[2:]))

from bench.cli import main

sys.exit(main())
