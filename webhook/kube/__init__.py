"""Facts about Kubernetes the core needs: quantities and the Pod field model."""
