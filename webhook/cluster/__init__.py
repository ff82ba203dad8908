"""Registration in a cluster: certificates, webhook configurations, caBundle."""
