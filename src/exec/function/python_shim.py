# runjobs Python worker: imports FILE, then calls FUNCTION on every input it receives.
# Protocol (SPEC 5's objects, batched, one per line): in {"first": N, "inputs": [X...]} or
# {"ids": [N...], "inputs": [X...]} (or single {"id": N, "input": X} lines); out
# {"first": N, "outputs": [Y...], "duration_s": S, "errors": [null or "..."...]} (or "ids").
import importlib.util
import itertools
import json
import os
import sys
import threading
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


def parse_request(line):
    """A request line -> (ids, first, inputs). runjobs sends batch lines {"first": N,
    "inputs": [...]} (the ids N, N+1, ...) or {"ids": [...], "inputs": [...]}; single
    {"id": N, "input": X} lines work too."""
    request = json.loads(line)
    if "inputs" in request:
        return request.get("ids"), request.get("first"), request["inputs"]
    return [request["id"]], None, [request["input"]]


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


class Outbox:
    """Answers of the batch being run, written as they come. The function's results are
    appended to a list and nothing else happens per item (as fast as Pool.map's loop); a
    flusher thread writes what is new in the list at least every 2 ms, so while an item
    runs every earlier answer reaches runjobs, and a hanging item is blamed, not one whose
    answer sat here. The time between two writes is the written items' duration, spread
    evenly over them by runjobs."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.lock = threading.Lock()  # one writer at a time, and batches in order
        self.ids, self.first = None, 0
        self.outputs, self.errors = [], {}
        self.sent = 0
        self.mark = time.perf_counter()

    def start(self, ids, first):
        """Writes what is left of the batch before, then takes a new one: returns the list
        its results go to and the dict its errors go to (by position)."""
        with self.lock:
            self.write_new()
            self.ids, self.first = ids, first
            self.outputs, self.errors = [], {}
            self.sent = 0
            self.mark = time.perf_counter()
            return self.outputs, self.errors

    def flush(self):
        with self.lock:
            self.write_new()

    def write_new(self):
        start, done = self.sent, len(self.outputs)
        if done == start:
            return
        now = time.perf_counter()
        total, self.mark = now - self.mark, now
        outputs = self.outputs[start:done]
        errors = None
        if self.errors:
            errors = [self.errors.get(n) for n in range(start, done)]
            if errors.count(None) == len(errors):
                errors = None
        try:
            text = json.dumps(outputs)
            if "NaN" in text or "Infinity" in text:
                raise ValueError("not strict JSON")
        except (TypeError, ValueError):
            text, problems = encode(outputs)
            errors = [e if e is not None else p for e, p in zip(errors or problems, problems)]
            if errors.count(None) == len(errors):
                errors = None
        if self.ids is None:
            line = '{"first":%d,"outputs":%s,"duration_s":%r' % (self.first + start, text, total)
        else:
            ids = json.dumps(self.ids[start:done])
            line = '{"ids":%s,"outputs":%s,"duration_s":%r' % (ids, text, total)
        if errors is not None:
            line += ',"errors":' + json.dumps(errors)
        self.protocol.write((line + "}\n").encode())
        self.protocol.flush()
        self.sent = done

    def flush_forever(self):
        while True:
            time.sleep(0.002)
            try:
                self.flush()
            except OSError:
                return  # runjobs is gone


def run(function, inputs, outputs, errors):
    """Calls FUNCTION on each input, appending its result to OUTPUTS; an item that raises
    gets its message in ERRORS (set before its place in OUTPUTS, so a flush that sees the
    place sees the message) and the loop goes on with the next."""
    put = outputs.append
    rest = inputs
    while True:
        try:
            for value in rest:
                put(function(value))
            return
        # KeyboardInterrupt and SystemExit too: raised by the function, they are its
        # item's failure (a terminal's Ctrl-C never reaches a worker, which runs in its
        # own process group; runjobs stops workers with SIGTERM).
        except BaseException as exc:  # noqa: BLE001 - the item fails, the worker lives
            at = len(outputs)
            errors[at] = describe(exc)
            put(None)
            rest = itertools.islice(inputs, at + 1, None)


def serve(function, protocol):
    """Answers in batch lines {"first": N, "outputs": [...], "errors": [...], "duration_s":
    TOTAL} (or "ids" for a request that named them)."""
    outbox = Outbox(protocol)
    threading.Thread(target=outbox.flush_forever, daemon=True).start()
    pending = b""
    while True:
        outbox.flush()  # before a read that may block
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                ids, first, inputs = parse_request(line)
                outputs, errors = outbox.start(ids, first)
                run(function, inputs, outputs, errors)
    outbox.flush()


if __name__ == "__main__":
    main()
