# runjobs Python worker: imports FILE, then calls FUNCTION on every input it receives.
# Protocol (SPEC 5, one JSON object per line): in {"id": N, "input": X}; out, batched,
# {"ids": [N...], "outputs": [Y...], "duration_s": S, "errors": [null or "..."...]}.
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
    serve(function, protocol)


def parse_requests(lines):
    """Request lines -> (ids, inputs). runjobs writes exactly {"id":N,"input":X}, so the
    inputs of a whole chunk are parsed with one json.loads; anything else takes the slow
    path."""
    ids, slices = [], []
    for line in lines:
        if not line.strip():
            continue
        comma = line.find(b",", 6)
        if not line.startswith(b'{"id":') or line[comma : comma + 9] != b',"input":':
            return parse_requests_slowly(lines)
        ids.append(int(line[6:comma]))
        slices.append(line[comma + 9 : -1])
    return ids, json.loads(b"[" + b",".join(slices) + b"]")


def parse_requests_slowly(lines):
    ids, inputs = [], []
    for line in lines:
        if line.strip():
            request = json.loads(line)
            ids.append(request["id"])
            inputs.append(request["input"])
    return ids, inputs


def encode(values):
    """JSON text of each value, or None with a message for one that is not JSON."""
    texts, problems = [], []
    strict = json.JSONEncoder(allow_nan=False).encode
    for value in values:
        try:
            texts.append(strict(value))
            problems.append(None)
        except (TypeError, ValueError) as error:
            texts.append("null")
            problems.append(f"the return value is not JSON: {error}")
    return "[" + ",".join(texts) + "]", problems


def serve(function, protocol):
    """Answers in batch lines {"ids": [...], "outputs": [...], "errors": [...],
    "duration_s": TOTAL}, one per ~2 ms of work, so runjobs sees steady progress."""
    dumps = json.dumps  # the cached default encoder: much faster than a configured one
    clock = time.perf_counter
    pending = b""
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        ids, inputs = parse_requests(lines)
        start = 0
        while start < len(ids):
            outputs, errors = [], []
            failed = False
            began = first = clock()
            slice_end = began + 0.002
            i = start
            while i < len(ids):
                try:
                    outputs.append(function(inputs[i]))
                    errors.append(None)
                except KeyboardInterrupt:
                    raise
                except BaseException as error:  # noqa: BLE001 - the item fails, the worker lives
                    outputs.append(None)
                    errors.append(describe(error))
                    failed = True
                i += 1
                began = clock()
                if began > slice_end:
                    break
            # One number for the batch (runjobs spreads it over the items): formatting a
            # float per item would cost more than the items themselves.
            elapsed = began - first
            try:
                text = dumps(outputs)
                if "NaN" in text or "Infinity" in text:
                    raise ValueError("not strict JSON")
            except (TypeError, ValueError):
                text, problems = encode(outputs)
                for k, problem in enumerate(problems):
                    if problem and errors[k] is None:
                        errors[k] = problem
                        failed = True
            line = '{"ids":%s,"outputs":%s,"duration_s":%r' % (dumps(ids[start:i]), text, elapsed)
            if failed:
                line += ',"errors":' + dumps(errors)
            protocol.write((line + "}\n").encode())
            protocol.flush()
            start = i


if __name__ == "__main__":
    main()
