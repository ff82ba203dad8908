"""The mutating hook's core: merge rules, override annotations, the patch."""
