"""A long-lived runjobs worker speaking the JSON-lines protocol (SPEC §5) by hand.

Reads {"id": N, "input": X} lines, answers {"id": N, "output": Y} or {"id": N, "error": "..."}.
Logs go to stderr; stdout carries only the protocol.
"""
import json
import sys

for line in sys.stdin:
    request = json.loads(line)
    text = request["input"]
    if isinstance(text, str):
        reply = {"id": request["id"], "output": text.upper()}
    else:
        reply = {"id": request["id"], "error": f"expected a string, got {type(text).__name__}"}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
