# runjobs Python worker: imports FILE, then calls FUNCTION on every input it receives.
# Protocol (one JSON object per line): in {"id": N, "input": X};
# out {"id": N, "output": Y, "duration_s": S} or {"id": N, "error": "...", "duration_s": S}.
import importlib.util
import json
import os
import sys
import time
import traceback


def load(path, name):
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def describe(error):
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    # Skip this shim's own frame; keep the end of the traceback, where the cause is.
    tail = "".join(lines[-6:]).strip()
    return f"{type(error).__name__}: {error}\n{tail}"


def main():
    path, name = sys.argv[1], sys.argv[2]
    # The protocol keeps the real stdout; anything the function prints (or its child
    # processes write to fd 1) goes to stderr, which runjobs logs.
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        function = load(path, name)
    except BaseException as error:  # noqa: BLE001 - report anything, then exit
        sys.stderr.write(f"cannot load {name} from {path}: {describe(error)}\n")
        sys.exit(3)
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    pending = b""
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = []
        last_flush = time.monotonic()
        for line in lines:
            if not line.strip():
                continue
            request = json.loads(line)
            ident = request["id"]
            started = time.perf_counter()
            try:
                reply = {"id": ident, "output": function(request["input"])}
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # noqa: BLE001 - the item fails, the worker lives
                reply = {"id": ident, "error": describe(error)}
            reply["duration_s"] = time.perf_counter() - started
            try:
                text = dumps(reply)
            except (TypeError, ValueError) as error:
                text = dumps({"id": ident, "error": f"the return value is not JSON: {error}"})
            out.append(text)
            now = time.monotonic()
            if now - last_flush > 0.002:
                protocol.write(("\n".join(out) + "\n").encode())
                protocol.flush()
                out.clear()
                last_flush = now
        if out:
            protocol.write(("\n".join(out) + "\n").encode())
            protocol.flush()


if __name__ == "__main__":
    main()
