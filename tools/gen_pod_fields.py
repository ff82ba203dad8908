"""Regenerate webhook/kube/schema/pod-fields.json from the official kubernetes client's models.

The webhook checks override fragments against this table instead of importing the client's
~700 model classes at start-up. Run: python tools/gen_pod_fields.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes.client.models as models

OUT = Path(__file__).resolve().parent.parent / "webhook" / "kube" / "schema" / "pod-fields.json"


def type_ref(t: str) -> object:
    """Turn the client's type strings ('list[V1Container]', 'dict(str, str)') into JSON."""
    if m := re.fullmatch(r"[lL]ist\[(.+)\]", t):
        return {"list": type_ref(m.group(1))}
    if m := re.fullmatch(r"[dD]ict[(\[]str, (.+)[)\]]", t):
        return {"map": type_ref(m.group(1))}
    return t


def build(root: str = "V1Pod") -> dict:
    types: dict[str, dict] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in types or not hasattr(models, name):
            continue
        cls = getattr(models, name)
        fields = {}
        for py, t in cls.openapi_types.items():
            fields[cls.attribute_map[py]] = type_ref(t)
            todo.extend(n for n in re.findall(r"\w+", t) if hasattr(models, n))
        types[name] = fields
    return {"root": root, "types": dict(sorted(types.items()))}


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
