"""`python -m bench`: see bench/__init__.py."""

import sys

if sys.argv[1:2] == ["audit"]:
    from bench.audit import main as audit_main

    sys.exit(audit_main(sys.argv[2:]))

if sys.argv[1:2] == ["adversarial"]:
    from bench.adversarial import main as adversarial_main

    sys.exit(adversarial_main(sys.argv[2:]))
if sys.argv[1:2] == ["airflow-policy"]:
    from bench.airflow_policy import main as airflow_policy_main

    sys.exit(airflow_policy_main(sys.argv[2:]))

from bench.cli import main

sys.exit(main())
