"""Greets whoever the payload names: `{"name": "Ada"}` → `{"greeting": "Hello, Ada!"}`."""

import json


def handler(event: bytes, context):
    name = json.loads(event or b"{}").get("name", "world")
    print(f"greeting {name} (task {context.task_id}, attempt {context.attempt})")
    return {"greeting": f"Hello, {name}!"}
