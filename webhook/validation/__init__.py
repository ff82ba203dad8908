"""What the validating hook judges on the final pod (new checks land here; see
../shared/design/layout.md for where the older validation modules will move)."""
