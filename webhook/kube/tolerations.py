"""Tolerations Kubernetes itself adds to every pod."""

# Added to every pod by the DefaultTolerationSeconds admission plugin before validating
# webhooks run: refusing them would refuse every pod in the cluster.
DEFAULT_TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
