"""How long `policy lint` takes: the bundled folder (the CI gate) and a thousand-file folder
(what the server reloads), in-process and as the command a CI step runs. Prints figures.

    python -m bench.lint [--files 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.policies import BUNDLED, policy_folder
from webhook.policy.load import load_policy_dir


def _median_seconds(run, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    command = [sys.executable, "-m", "webhook", "policy", "lint", str(BUNDLED)]

    def lint_bundled() -> None:
        assert load_policy_dir(BUNDLED).policy_set is not None

    def lint_command() -> None:
        subprocess.run(command, check=True, capture_output=True)

    print(f"policy lint, median of {args.rounds}:")
    print(f"  bundled folder, in-process:            "
          f"{_median_seconds(lint_bundled, args.rounds) * 1000:7.1f} ms")
    print(f"  bundled folder, `airflow-pod-webhook policy lint policies/`: "
          f"{_median_seconds(lint_command, args.rounds) * 1000:7.1f} ms (with interpreter start)")
    with tempfile.TemporaryDirectory() as tmp:
        many = policy_folder(Path(tmp) / "many", args.files)

        def lint_many() -> None:
            assert load_policy_dir(many).policy_set is not None

        print(f"  {args.files} files, in-process:               "
              f"{_median_seconds(lint_many, max(3, args.rounds // 2)) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
