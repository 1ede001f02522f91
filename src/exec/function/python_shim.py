# runjobs Python worker: imports FILE, then calls FUNCTION on every input it receives.
# Protocol (SPEC 5's objects, batched, one per line): in {"first": N, "inputs": [X...]} or
# {"ids": [N...], "inputs": [X...]} (or single {"id": N, "input": X} lines), the inputs
# start, start+step, ... possibly as {"range": [start, stop(, step)]}; out
# {"first": N, "outputs": [Y...], "duration_s": S, "errors": [null or "..."...]} (or "ids"),
# or, for outputs that are all ints of 64 bits, {"first": N, "ints": "HEX", "duration_s": S}
# (their little-endian bytes).
import importlib.util
import itertools
import json
import os
import sys
import threading
import time
from array import array
from types import FunctionType


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
    import traceback  # only once something failed: it costs a worker's start ~2 ms

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
    # Everything is answered: end as a multiprocessing worker ends, without tearing the
    # interpreter down (several milliseconds a worker), once what the function's module
    # registered with atexit has run and what it printed is out.
    import atexit

    atexit._run_exitfuncs()
    sys.stderr.flush()
    os._exit(0)


def parse_request(line):
    """A request line -> (ids, first, inputs). runjobs sends batch lines {"first": N,
    "inputs": [...]} (the ids N, N+1, ...) or {"ids": [...], "inputs": [...]}; single
    {"id": N, "input": X} lines work too."""
    request = json.loads(line)
    if "inputs" in request:
        inputs = request["inputs"]
        if type(inputs) is dict:  # consecutive integers: made here, not parsed
            inputs = range(*inputs["range"])
        return request.get("ids"), request.get("first"), inputs
    return [request["id"]], None, [request["input"]]


# Types the json module writes as they are; a value of any other type goes through `plain`.
JSON_TYPES = frozenset((int, float, str, bool, type(None)))


class NoJsonForm(Exception):
    """A value with no one obvious JSON form; the message says what to return instead."""


def loaded(module, name):
    """`module.name` if the module is loaded, else None. A value of one of its types means
    the module is loaded, so the shim imports nothing to recognise it."""
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def plain(value):
    """`value` as the json module can write it: numpy values (anything with `.tolist()` or
    `.item()`), dates and times (ISO 8601 text), Decimal, Fraction, UUID and paths (text),
    sets (lists, sorted when their elements compare), dataclasses and named tuples (objects).
    Raises NoJsonForm where there is no obvious form (bytes, generators, other objects);
    NaN and infinities pass, for the strict encoder to refuse."""
    kind = type(value)
    if kind in JSON_TYPES:
        return value
    if kind is list or kind is tuple:
        return plain_items(value)
    if kind is dict:
        return plain_dict(value)
    if isinstance(value, (str, int, float)):  # IntEnum, numpy.float64, numpy.str_ ...
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise NoJsonForm("bytes have no JSON form; return text (value.decode()) or base64")
    if isinstance(value, dict):
        return plain_dict(value)
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        return dict(zip(value._fields, map(plain, value)))
    if isinstance(value, (list, tuple)):
        return plain_items(value)
    if isinstance(value, (set, frozenset)):
        items = list(value)
        try:
            items.sort()
        except TypeError:
            pass  # elements that do not compare keep the set's order
        return plain_items(items)
    text = as_text(value)
    if text is not None:
        return text
    fields = loaded("dataclasses", "fields")
    if fields is not None and hasattr(kind, "__dataclass_fields__"):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    for method in ("tolist", "item"):  # numpy arrays and scalars, tensors, array.array
        convert = getattr(value, method, None)
        if callable(convert):
            return plain(convert())
    if hasattr(value, "__next__") and is_iterator(value):
        raise NoJsonForm(f"a {kind.__name__} (an iterator) has no JSON form; return list(...)")
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    raise NoJsonForm(
        f"an object of type {name} has no JSON form; return a number, text, a list or a dict"
    )


def is_iterator(value):
    try:
        return iter(value) is value
    except TypeError:
        return False


def as_text(value):
    """The text of a date, time, Decimal, Fraction, UUID or path; None for anything else."""
    for module, names, text in TEXT_FORMS:
        for name in names:
            kind = loaded(module, name)
            if kind is not None and isinstance(value, kind):
                return text(value)
    return None


# (module, types, their text): dates and times as ISO 8601, the rest as str() gives them.
TEXT_FORMS = (
    ("datetime", ("date", "time"), lambda value: value.isoformat()),
    ("decimal", ("Decimal",), str),
    ("fractions", ("Fraction",), str),
    ("uuid", ("UUID",), str),
    ("pathlib", ("PurePath",), os.fspath),
)


def plain_items(items):
    if JSON_TYPES.issuperset(map(type, items)):
        return items
    return [plain(item) for item in items]


def plain_dict(mapping):
    if JSON_TYPES.issuperset(map(type, mapping.values())) and all(
        type(key) is str for key in mapping
    ):
        return mapping
    return {plain_key(key): plain(item) for key, item in mapping.items()}


def plain_key(key):
    key = plain(key)
    if key is None or isinstance(key, (str, int, float)):
        return key  # json writes these as text
    raise NoJsonForm(f"a dict key of type {type(key).__name__} has no JSON form")


STRICT = json.JSONEncoder(allow_nan=False).encode


def problem(error):
    """The message of a value that is not JSON."""
    if isinstance(error, RecursionError):
        error = "it is nested too deeply (or contains itself)"
    elif isinstance(error, ValueError):  # the strict encoder's NaN or infinity
        error = "NaN and infinities have no JSON form; return None or text such as 'nan'"
    elif not isinstance(error, (NoJsonForm, TypeError)):
        # Its own .tolist(), .item() or isoformat() failed.
        error = f"converting it failed: {type(error).__name__}: {error}"
    return f"the return value is not JSON: {error}"


def int64_hex(outputs, kinds):
    """A batch of plain ints that all fit in 64 bits (`kinds`: the outputs' types) as the
    hex of their little-endian bytes: a quarter of the cost of their JSON text, for runjobs
    to write as decimals. None for any other batch."""
    if len(kinds) != 1 or int not in kinds:
        return None
    try:
        ints = array("q", outputs)
    except OverflowError:
        return None
    if sys.byteorder == "big":
        ints.byteswap()
    return ints.tobytes().hex()


def encode(outputs, kinds):
    """The JSON text of a batch's outputs (`kinds`: their types), and for each one with no
    JSON form its message (None when all have one). A batch of plain values costs one
    strict encoding."""
    if JSON_TYPES.issuperset(kinds):
        try:
            return STRICT(outputs), None
        except ValueError:
            pass  # a NaN or an infinity: found item by item below
    values, problems = [], []
    for value in outputs:
        try:
            values.append(plain(value))
            problems.append(None)
        except Exception as error:  # noqa: BLE001 - the item fails, the worker lives
            values.append(None)
            problems.append(problem(error))
    try:
        text = json.dumps(values, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        texts = []
        for at, value in enumerate(values):
            try:
                texts.append(STRICT(value))
            except (TypeError, ValueError, RecursionError) as error:
                texts.append("null")
                problems[at] = problem(error)
        text = "[" + ",".join(texts) + "]"
    if problems.count(None) == len(problems):
        return text, None
    return text, problems


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
        kinds = set(map(type, outputs))
        hexed = int64_hex(outputs, kinds) if self.ids is None and errors is None else None
        if hexed is not None:
            head, text = '{"first":%d,"ints":"' % (self.first + start), hexed + '"'
        else:
            text, problems = encode(outputs, kinds)
            if problems is not None:
                errors = [e if e is not None else p for e, p in zip(errors or problems, problems)]
            if self.ids is None:
                head = '{"first":%d,"outputs":' % (self.first + start)
            else:
                head = '{"ids":%s,"outputs":' % json.dumps(self.ids[start:done])
        tail = ',"duration_s":%r' % total
        if errors is not None:
            tail += ',"errors":' + json.dumps(errors)
        # One copy of the outputs' text (it is most of the line), not one per concatenation.
        self.protocol.write(b"".join((head.encode(), text.encode(), tail.encode(), b"}\n")))
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
    # A Python function is called by `list.extend(map(...))`, in C, as Pool.map's workers
    # call it: each call's own bytecode still lets the flusher thread in. Any other callable
    # (a builtin, say) runs no bytecode, so the loop's own lets the flusher in between calls.
    in_c = type(function) is FunctionType
    rest = inputs
    while True:
        try:
            if in_c:
                outputs.extend(map(function, rest))
            else:
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
