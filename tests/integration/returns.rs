//! What a Python function may return: values with one obvious JSON form are
//! converted by the worker (numpy values, dates, Decimal, sets, dataclasses, named tuples, …),
//! the rest fail their item with a hint; integers beyond 64 bits keep every digit, in JSON,
//! JSON Lines and TOML alike. The numpy rows need an interpreter with numpy:
//! `RUNJOBS_NUMPY_PYTHON` names one (CI sets it, and then a missing numpy fails the test);
//! without it they use `python3` if it has numpy, else they are skipped, saying so.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::util::*;

/// Each function returns the value its input names.
const STDLIB_FNS: &str = r#"
import collections, dataclasses, datetime, decimal, enum, fractions, pathlib, uuid

@dataclasses.dataclass
class Point:
    x: int
    when: datetime.date

Pair = collections.namedtuple("Pair", "a b")

class Level(enum.IntEnum):
    HIGH = 3

class Broken:
    def tolist(self):
        raise RuntimeError("no list today")

VALUES = {
    "date": lambda: datetime.date(2026, 12, 7),
    "datetime": lambda: datetime.datetime(2026, 12, 7, 1, 2, 3, 4, tzinfo=datetime.timezone.utc),
    "naive_datetime": lambda: datetime.datetime(2026, 12, 7, 1, 2, 3),
    "time": lambda: datetime.time(1, 2, 3),
    "decimal": lambda: decimal.Decimal("1.10"),
    "fraction": lambda: fractions.Fraction(1, 3),
    "uuid": lambda: uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "path": lambda: pathlib.Path("/data/x.csv"),
    "set": lambda: {3, 1, 2},
    "frozenset": lambda: frozenset({"b", "c", "a"}),
    "dataclass": lambda: Point(1, datetime.date(2026, 1, 2)),
    "namedtuple": lambda: Pair(1, Pair(2, [3])),
    "int_enum": lambda: Level.HIGH,
    "nested": lambda: {"sets": [{2, 1}], datetime.date(2026, 1, 2): decimal.Decimal("5")},
    "big_int": lambda: 2 ** 80,
    "big_negative": lambda: -(2 ** 70),
    "bytes": lambda: b"raw",
    "nan": lambda: float("nan"),
    "infinity": lambda: [float("-inf")],
    "generator": lambda: (n for n in range(3)),
    "object": lambda: object(),
    "tuple_key": lambda: {(1, 2): 3},
    "enum_key": lambda: {Level.HIGH: "high", uuid.UUID(int=1): 1},
    "broken_tolist": lambda: Broken(),
}

def give(name):
    return VALUES[name]()
"#;

/// `(input, output)` of the rows that convert, as JSON reads them back (the big integers are
/// checked in the files' text: a JSON reader without arbitrary precision rounds them).
fn stdlib_converted() -> Vec<(&'static str, Value)> {
    vec![
        ("date", json!("2026-12-07")),
        ("datetime", json!("2026-12-07T01:02:03.000004+00:00")),
        ("naive_datetime", json!("2026-12-07T01:02:03")),
        ("time", json!("01:02:03")),
        ("decimal", json!("1.10")),
        ("fraction", json!("1/3")),
        ("uuid", json!("12345678-1234-5678-1234-567812345678")),
        ("path", json!("/data/x.csv")),
        ("set", json!([1, 2, 3])),
        ("frozenset", json!(["a", "b", "c"])),
        ("dataclass", json!({"x": 1, "when": "2026-01-02"})),
        ("namedtuple", json!({"a": 1, "b": {"a": 2, "b": [3]}})),
        ("int_enum", json!(3)),
        ("nested", json!({"sets": [[1, 2]], "2026-01-02": "5"})),
        (
            "enum_key",
            json!({"3": "high", "00000000-0000-0000-0000-000000000001": 1}),
        ),
    ]
}

/// `(input, a piece of the error)` of the rows with no JSON form.
const STDLIB_REFUSED: [(&str, &str); 7] = [
    (
        "bytes",
        "bytes have no JSON form; return text (value.decode()) or base64",
    ),
    ("nan", "NaN and infinities have no JSON form"),
    ("infinity", "NaN and infinities have no JSON form"),
    (
        "generator",
        "a generator (an iterator) has no JSON form; return list(...)",
    ),
    ("object", "an object of type object has no JSON form"),
    ("tuple_key", "a dict key of type tuple has no JSON form"),
    (
        "broken_tolist",
        "converting it failed: RuntimeError: no list today",
    ),
];

/// The big integers: `(input, output as JSON and JSON Lines write it, as TOML does)`; TOML
/// integers stop at 64 bits, so there they are text with every digit.
type Big = (&'static str, &'static str, &'static str);
const BIG: [Big; 2] = [
    (
        "big_int",
        "1208925819614629174706176",
        "\"1208925819614629174706176\"",
    ),
    (
        "big_negative",
        "-1180591620717411303424",
        "\"-1180591620717411303424\"",
    ),
];

/// One run's results, whatever the format: `(text of the file, input → result)`, the TOML
/// ones turned into JSON.
fn run_returns(dir: &Path, python: &str, inputs: &[&str], ext: &str) -> (String, Vec<Value>) {
    let inputs = serde_json::to_string(inputs).unwrap();
    let job = write(
        dir,
        "job.toml",
        &format!(
            "workers = 2\n[functions.give]\npython = \"fns.py:give\"\npython_exe = {}\n[[task]]\nfunction = \"give\"\ninputs = {inputs}\n",
            json!(python)
        ),
    );
    let out = dir.join(format!("out.{ext}"));
    let run = runjobs().arg(&job).arg("-o").arg(&out).output().unwrap();
    let text = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no {ext} results ({e}): {}", stderr(&run)));
    let results: Vec<Value> = match ext {
        "json" => results(&read_json(&out), 0).clone(),
        "jsonl" => text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line.get("index").is_some())
            .collect(),
        _ => {
            let doc: toml::Table = toml::from_str(&text).unwrap();
            let doc = serde_json::to_value(doc).unwrap();
            results(&doc, 0).clone()
        }
    };
    let mut by_index = results;
    by_index.sort_by_key(|r| r["index"].as_u64().unwrap());
    assert_eq!(
        by_index.len(),
        serde_json::from_str::<Vec<Value>>(&inputs).unwrap().len()
    );
    (text, by_index)
}

/// Checks every converted row, refused row and big integer of one run.
fn check_rows(
    ext: &str,
    (text, results): &(String, Vec<Value>),
    converted: &[(&str, Value)],
    refused: &[(&str, &str)],
    big: &[Big],
) {
    let mut at = 0;
    for (input, expected) in converted {
        let r = &results[at];
        assert_eq!(r["input"], json!(input), "{ext}: {r}");
        assert_eq!(r["status"], "ok", "{ext}: {input}: {r}");
        assert_eq!(&r["output"], expected, "{ext}: {input}");
        at += 1;
    }
    for (input, hint) in refused {
        let r = &results[at];
        assert_eq!(r["input"], json!(input), "{ext}: {r}");
        assert_eq!(r["status"], "failed", "{ext}: {input}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with("the return value is not JSON: ") && error.contains(hint),
            "{ext}: {input}: {error}"
        );
        at += 1;
    }
    for (input, json, toml) in big {
        let r = &results[at];
        assert_eq!(r["status"], "ok", "{ext}: {input}: {r}");
        let written = match ext {
            "toml" => format!("output = {toml},"),
            _ => format!("\"output\":{json},"),
        };
        assert!(text.contains(&written), "{ext}: no `{written}` in\n{text}");
        at += 1;
    }
}

fn inputs_of<'a>(
    converted: &[(&'a str, Value)],
    refused: &[(&'a str, &str)],
    big: &[Big],
) -> Vec<&'a str> {
    let names = converted.iter().map(|(name, _)| *name);
    names
        .chain(refused.iter().map(|(name, _)| *name))
        .chain(big.iter().map(|(name, _, _)| *name))
        .collect()
}

#[test]
fn python_returns_with_one_json_form_are_converted_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fns.py", STDLIB_FNS);
    let converted = stdlib_converted();
    let inputs = inputs_of(&converted, &STDLIB_REFUSED, &BIG);
    for ext in ["json", "jsonl", "toml"] {
        let run = run_returns(dir.path(), "python3", &inputs, ext);
        check_rows(ext, &run, &converted, &STDLIB_REFUSED, &BIG);
    }
}

/// A set whose elements do not compare keeps its own order, and every element.
#[test]
fn an_unsortable_set_becomes_a_list_of_its_elements() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fns.py",
        "def give(_):\n    return {1, 'a', None}\n",
    );
    let (_, results) = run_returns(dir.path(), "python3", &["mixed"], "json");
    let mut items: Vec<String> = results[0]["output"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", results[0]))
        .iter()
        .map(Value::to_string)
        .collect();
    items.sort();
    assert_eq!(items, ["\"a\"", "1", "null"]);
}

const NUMPY_FNS: &str = r#"
import numpy

VALUES = {
    "int64": lambda: numpy.int64(7),
    "uint8": lambda: numpy.uint8(255),
    "bool": lambda: numpy.bool_(True),
    "float32": lambda: numpy.float32(1.5),
    "float64": lambda: numpy.float64(2.5),
    "array": lambda: numpy.array([[1, 2], [3, 4]]),
    "float_array": lambda: numpy.arange(3) / 2,
    "datetime64": lambda: numpy.datetime64("2026-12-07"),
    "in_a_dict": lambda: {"n": numpy.int32(3), numpy.int64(4): numpy.array([True])},
    "nan_array": lambda: numpy.array([1.0, numpy.nan]),
    "bytes_": lambda: numpy.bytes_(b"raw"),
    "big": lambda: numpy.array([2 ** 80], dtype=object),
}

def give(name):
    return VALUES[name]()
"#;

/// An interpreter with numpy: `RUNJOBS_NUMPY_PYTHON` (required to work when set), else
/// `python3` if it has numpy; `None` (saying why) otherwise.
fn numpy_python() -> Option<String> {
    let has_numpy = |python: &str| {
        Command::new(python)
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(python) = std::env::var_os("RUNJOBS_NUMPY_PYTHON") {
        let python = python.to_string_lossy().into_owned();
        assert!(
            has_numpy(&python),
            "RUNJOBS_NUMPY_PYTHON is `{python}`, but it cannot import numpy"
        );
        return Some(python);
    }
    if has_numpy("python3") {
        return Some("python3".into());
    }
    eprintln!(
        "skipped: python3 has no numpy here (set RUNJOBS_NUMPY_PYTHON to an interpreter with it)"
    );
    None
}

#[test]
fn numpy_returns_are_converted_in_every_format() {
    let Some(python) = numpy_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fns.py", NUMPY_FNS);
    let converted = vec![
        ("int64", json!(7)),
        ("uint8", json!(255)),
        ("bool", json!(true)),
        ("float32", json!(1.5)),
        ("float64", json!(2.5)),
        ("array", json!([[1, 2], [3, 4]])),
        ("float_array", json!([0.0, 0.5, 1.0])),
        ("datetime64", json!("2026-12-07")),
        ("in_a_dict", json!({"n": 3, "4": [true]})),
    ];
    let refused = [
        ("nan_array", "NaN and infinities have no JSON form"),
        ("bytes_", "bytes have no JSON form"),
    ];
    // An object array's `.tolist()` gives Python integers.
    let big = [(
        "big",
        "[1208925819614629174706176]",
        "[\"1208925819614629174706176\"]",
    )];
    let inputs = inputs_of(&converted, &refused, &big);
    for ext in ["json", "jsonl", "toml"] {
        let run = run_returns(dir.path(), &python, &inputs, ext);
        check_rows(ext, &run, &converted, &refused, &big);
    }
}
