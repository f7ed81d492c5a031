"""Counts words line by line, reporting progress and checkpointing, so a retried task resumes
where the last attempt left off. An async handler."""

import asyncio


async def handler(event: bytes, context):
    lines = event.decode("utf-8", "replace").splitlines()
    state = context.last_checkpoint or {"done": 0, "words": 0}
    if state["done"]:
        context.logger.info("resuming at line %d", state["done"])
    for i in range(state["done"], len(lines)):
        state = {"done": i + 1, "words": state["words"] + len(lines[i].split())}
        context.checkpoint(state)
        context.progress((i + 1) / len(lines), f"line {i + 1} of {len(lines)}")
        await asyncio.sleep(0)
    return {"lines": len(lines), "words": state["words"]}
