"""The smallest useful SPEC §5 worker: echoes each input back, flushing once per burst."""
import json
import os
import sys

out = sys.stdout
pending = b""
while True:
    chunk = os.read(0, 1 << 16)
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\n")
    replies = []
    for line in lines:
        if line:
            request = json.loads(line)
            replies.append('{"id":%d,"output":%s}' % (request["id"], json.dumps(request["input"])))
    if replies:
        out.write("\n".join(replies) + "\n")
        out.flush()
