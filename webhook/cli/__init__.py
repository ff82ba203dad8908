"""`airflow-pod-webhook`: serve, make certs and manifests, and run the hooks offline.

The offline commands call the same pure core the server does (webhook.decide), so `mutate
FILE` and `POST /mutate` agree on every pod, and they accept what the server accepts (same size
and nesting limits, same messages): webhook.cli.inputs reads pods and policy folders for all of
them.

One module a command (serve, certs, manifests, mutate, validate, audit, policy), each adding
its own arguments to the parser of webhook.cli.entry, whose `main` keeps one exit-code contract
for every command (README, "Exit codes"; webhook.cli.common):
0 success / allowed / all tests passed; 1 denied / a test failed / lint errors;
2 bad input or usage (unreadable file, bad YAML, missing folder, bad flag).
A closed standard output (`... | head -1`) never changes the code.

The commands only adapt: arguments, files, printing. Imports of the core and of optional
dependencies (flask and gunicorn, cryptography, the kubernetes client) sit inside each command's
function, so building the parser loads none of them and a missing extra is named, not a
traceback.
"""

from __future__ import annotations

from webhook.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
