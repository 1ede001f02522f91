# runjobs Python worker: imports FILE, then calls FUNCTION on every input it receives.
# Protocol (SPEC 5's objects, batched, one per line): in {"ids": [N...], "inputs": [X...]}
# (or single {"id": N, "input": X} lines); out
# {"ids": [N...], "outputs": [Y...], "duration_s": S, "errors": [null or "..."...]}.
import importlib.util
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


def parse_requests(lines):
    """Request lines -> (ids, inputs). runjobs sends batch lines {"ids": [...], "inputs":
    [...]}; single {"id": N, "input": X} lines work too."""
    ids, inputs = [], []
    for line in lines:
        if not line.strip():
            continue
        request = json.loads(line)
        if "ids" in request:
            ids.extend(request["ids"])
            inputs.extend(request["inputs"])
        else:
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


class Outbox:
    """Answers waiting to be written. Each answer is queued as soon as its item is done, and a
    flusher thread writes the queue at least every 2 ms; so while an item runs, every earlier
    answer reaches runjobs, and a hanging item is blamed, not one whose answer sat here."""

    def __init__(self, protocol):
        self.protocol = protocol
        # The hot loop only appends; the flusher takes a prefix with one slice and one del,
        # each atomic under the GIL, so no lock is needed on this side.
        self.queue = []
        self.lock = threading.Lock()  # keeps batches in order

    def flush(self):
        with self.lock:
            count = len(self.queue)
            if not count:
                return
            taken = self.queue[:count]
            del self.queue[:count]
            ids, outputs, errors, durations = zip(*taken)
            total = sum(durations)
            try:
                text = json.dumps(outputs)
                if "NaN" in text or "Infinity" in text:
                    raise ValueError("not strict JSON")
            except (TypeError, ValueError):
                text, problems = encode(outputs)
                errors = [e if e is not None else p for e, p in zip(errors, problems)]
            line = '{"ids":%s,"outputs":%s,"duration_s":%r' % (json.dumps(ids), text, total)
            if errors.count(None) != count:
                line += ',"errors":' + json.dumps(errors)
            self.protocol.write((line + "}\n").encode())
            self.protocol.flush()

    def flush_forever(self):
        while True:
            time.sleep(0.002)
            try:
                self.flush()
            except OSError:
                return  # runjobs is gone


def serve(function, protocol):
    """Answers in batch lines {"ids": [...], "outputs": [...], "errors": [...],
    "duration_s": TOTAL} (runjobs spreads TOTAL over the items: formatting a float per
    item would cost more than the items themselves)."""
    outbox = Outbox(protocol)
    threading.Thread(target=outbox.flush_forever, daemon=True).start()
    clock = time.perf_counter
    pending = b""
    while True:
        outbox.flush()  # before a read that may block
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        ids, inputs = parse_requests(lines)
        put = outbox.queue.append  # a bound C method: the hot loop makes no Python calls
        began = clock()
        for ident, value in zip(ids, inputs):
            try:
                output = function(value)
            # KeyboardInterrupt and SystemExit too: raised by the function, they are its
            # item's failure (a terminal's Ctrl-C never reaches a worker, which runs in its
            # own process group; runjobs stops workers with SIGTERM).
            except BaseException as exc:  # noqa: BLE001 - the item fails, the worker lives
                ended = clock()
                put((ident, None, describe(exc), ended - began))
                began = ended
                continue
            ended = clock()
            put((ident, output, None, ended - began))
            began = ended
    outbox.flush()


if __name__ == "__main__":
    main()
