//! Every builtin through the table, as the worker calls them.

use super::values::*;
use super::*;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use std::time::Instant;

fn call(name: &str, input: Value) -> Result<Value, String> {
    lookup(name)
        .unwrap_or_else(|| panic!("no builtin {name}"))
        .call(&input, &Options::default())
}

fn ok(name: &str, input: Value) -> Value {
    call(name, input.clone()).unwrap_or_else(|e| panic!("{name}({input}) failed: {e}"))
}

fn err(name: &str, input: Value) -> String {
    match call(name, input.clone()) {
        Ok(out) => panic!("{name}({input}) should fail, got {out}"),
        Err(e) => e,
    }
}

fn fmt(template: &str, input: Value) -> Result<Value, String> {
    let options = Options {
        template: Some(template.to_string()),
    };
    lookup("format").unwrap().call(&input, &options)
}

/// A fresh file under the temp dir with `content`; removed on drop.
struct TempFile(PathBuf);
impl TempFile {
    fn new(content: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "runjobs-builtins-test-{}-{n}.txt",
            std::process::id()
        ));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }
    fn json(&self) -> Value {
        json!(self.0.to_str().unwrap())
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// --- table ---

#[test]
fn table_is_sorted_unique_and_complete() {
    let names: Vec<_> = names().collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    assert_eq!(
        names,
        [
            "add",
            "collatz_steps",
            "cube",
            "double",
            "factorize",
            "fib",
            "format",
            "identity",
            "is_prime",
            "len",
            "line_count",
            "lower",
            "negate",
            "print_number",
            "sha256",
            "sha256_file",
            "sleep",
            "square",
            "sum",
            "upper",
            "word_count",
        ]
    );
    for b in all() {
        assert!(!b.input.is_empty() && !b.output.is_empty() && !b.doc.is_empty());
        assert_eq!(lookup(b.name).map(|l| l.name), Some(b.name));
    }
    assert!(lookup("nope").is_none());
    assert!(lookup("").is_none());
}

// --- arithmetic ---

#[test]
fn square_happy_and_boundaries() {
    assert_eq!(ok("square", json!(-3)), json!(9));
    assert_eq!(ok("square", json!(0)), json!(0));
    assert_eq!(ok("square", json!(2.5)), json!(6.25));
    assert_eq!(
        ok("square", json!(4294967295u64)),
        json!(18446744065119617025u64)
    );
    assert_eq!(
        ok("square", json!(3037000499i64)),
        json!(9223372030926249001i64)
    );
    let e = err("square", json!(i64::MAX));
    assert!(
        e.contains("overflow") && e.contains("square(9223372036854775807)"),
        "{e}"
    );
    err("square", json!(4294967296u64));
    err("square", json!(i64::MIN));
    err("square", json!(u64::MAX));
    let e = err("square", json!(1e200));
    assert!(e.contains("not a finite number"), "{e}");
}

#[test]
fn square_wrong_type() {
    assert_eq!(
        err("square", json!("abc")),
        "square expects a number, got string \"abc\""
    );
    assert_eq!(
        err("square", json!(null)),
        "square expects a number, got null"
    );
    assert!(err("square", json!(true)).contains("boolean true"));
}

#[test]
fn long_values_are_truncated_in_messages() {
    let long = "x".repeat(10_000);
    let e = err("square", json!(long));
    assert!(e.len() < 200, "{e}");
    assert!(e.ends_with('…'), "{e}");
    let multibyte = "é".repeat(500);
    let e = err("cube", json!(multibyte));
    assert!(e.ends_with('…') && !e.contains('\u{FFFD}'), "{e}");
    let big: Vec<u64> = (0..100_000).collect();
    assert!(err("upper", json!(big)).len() < 200);
}

#[test]
fn cube_double_negate() {
    assert_eq!(ok("cube", json!(-3)), json!(-27));
    assert_eq!(ok("cube", json!(1.5)), json!(3.375));
    assert_eq!(ok("cube", json!(2097151)), json!(9223358842721533951i64));
    assert_eq!(ok("cube", json!(2642245)), json!(18446724184312856125u64));
    err("cube", json!(2642246));
    err("cube", json!(u64::MAX));
    err("cube", json!(1e200));
    err("cube", json!([1]));

    assert_eq!(ok("double", json!(21)), json!(42));
    assert_eq!(ok("double", json!(-0.25)), json!(-0.5));
    assert_eq!(
        ok("double", json!(i64::MAX)),
        json!(18446744073709551614u64)
    );
    err("double", json!(u64::MAX));
    err("double", json!(1e308));
    err("double", json!({}));

    assert_eq!(ok("negate", json!(5)), json!(-5));
    assert_eq!(ok("negate", json!(-1.5)), json!(1.5));
    assert_eq!(ok("negate", json!(i64::MIN)), json!(9223372036854775808u64));
    assert_eq!(ok("negate", json!(9223372036854775808u64)), json!(i64::MIN));
    err("negate", json!(9223372036854775809u64));
    err("negate", json!("5"));
}

#[test]
fn identity_returns_input() {
    for v in [
        json!(null),
        json!([1, "a"]),
        json!({"a": {"b": 2}}),
        json!(1.5),
    ] {
        assert_eq!(ok("identity", v.clone()), v);
    }
}

#[test]
fn add_numbers() {
    assert_eq!(ok("add", json!({"a": 2, "b": 3})), json!(5));
    assert_eq!(ok("add", json!({"a": 2, "b": 0.5})), json!(2.5));
    assert_eq!(
        ok("add", json!({"a": u64::MAX, "b": -1})),
        json!(18446744073709551614u64)
    );
    assert_eq!(ok("add", json!({"a": i64::MIN, "b": -0})), json!(i64::MIN));
    let e = err("add", json!({"a": u64::MAX, "b": 1}));
    assert!(e.contains("overflow: add(18446744073709551615, 1)"), "{e}");
    err("add", json!({"a": i64::MIN, "b": -1}));
    err("add", json!({"a": 1e308, "b": 1e308}));
    assert!(err("add", json!({"a": 1})).contains("`b` is missing"));
    assert!(err("add", json!({"a": 1, "b": "x"})).contains("`b` to be a number"));
    assert!(err("add", json!({"a": 1, "b": 2, "c": 3})).contains("unexpected key `c`"));
    assert!(err("add", json!([1, 2])).starts_with("add expects a table {a, b}"));
}

#[test]
fn sum_numbers() {
    assert_eq!(ok("sum", json!([])), json!(0));
    assert_eq!(ok("sum", json!([1, 2, 3])), json!(6));
    assert_eq!(ok("sum", json!([1, 2.5])), json!(3.5));
    // Intermediate values beyond 64 bits are fine if the total fits.
    assert_eq!(
        ok(
            "sum",
            json!([u64::MAX, u64::MAX, i64::MIN, i64::MIN, i64::MIN, i64::MIN])
        ),
        json!(-2)
    );
    let e = err("sum", json!([u64::MAX, 1]));
    assert!(e.contains("overflow: sum of 2 numbers"), "{e}");
    err("sum", json!([1e308, 1e308]));
    assert!(err("sum", json!([1, "a"])).contains("string \"a\" at index 1"));
    err("sum", json!(5));
}

// --- text ---

#[test]
fn print_number_matches_python() {
    let cases = [
        (json!(5), "5"),
        (json!(-7), "-7"),
        (json!(u64::MAX), "18446744073709551615"),
        (json!(1.5), "1.5"),
        (json!(2.0), "2.0"),
        (json!(-0.0), "-0.0"),
        (json!(0.0), "0.0"),
        (json!(1e16), "1e+16"),
        (json!(1e15), "1000000000000000.0"),
        (json!(1e-5), "1e-05"),
        (json!(0.0001), "0.0001"),
        (json!(12345678901234567.0), "1.2345678901234568e+16"),
        (json!(1e308), "1e+308"),
        (json!(5e-324), "5e-324"),
        (json!(0.1 + 0.2), "0.30000000000000004"),
        (json!(123456789.0), "123456789.0"),
        (json!(-1.5e-7), "-1.5e-07"),
        // 87829832555702.125 exactly, halfway between the two shortest candidates:
        // Python rounds half to even (bits spelled out so the literal is exact).
        (
            json!(f64::from_bits(0x42d3_f85e_7e17_2d88)),
            "87829832555702.12",
        ),
    ];
    for (input, text) in cases {
        assert_eq!(
            ok("print_number", input.clone()),
            json!(format!("Process {text}: {text}")),
            "{input}"
        );
    }
    err("print_number", json!("5"));
    err("print_number", json!(true));
}

#[test]
fn format_templates() {
    assert_eq!(fmt("item {input}", json!("x")).unwrap(), json!("item x"));
    assert_eq!(fmt("n={input}", json!(3)).unwrap(), json!("n=3"));
    assert_eq!(
        fmt("{input}", json!({"a": [1, "b"]})).unwrap(),
        json!(r#"{"a":[1,"b"]}"#)
    );
    assert_eq!(
        fmt(
            "hello {input.name}, {input.age}",
            json!({"name": "Ann", "age": 30})
        )
        .unwrap(),
        json!("hello Ann, 30")
    );
    assert_eq!(
        fmt("{{input}} {{{input}}} }}", json!(1)).unwrap(),
        json!("{input} {1} }")
    );
    assert_eq!(fmt("{input.a.b}", json!({"a.b": 1})).unwrap(), json!("1"));
    assert_eq!(fmt("", json!(1)).unwrap(), json!(""));
    assert_eq!(fmt("plain", json!(1)).unwrap(), json!("plain"));
    assert_eq!(fmt("é{input}ü", json!("ß")).unwrap(), json!("éßü"));
}

#[test]
fn format_errors() {
    let missing = call("format", json!(1)).unwrap_err();
    assert!(missing.contains("needs a `template` option"), "{missing}");
    let e = fmt("{input.name}", json!({"id": 1})).unwrap_err();
    assert!(e.contains("no key `name`") && e.contains("`id`"), "{e}");
    let e = fmt("{input.name}", json!("x")).unwrap_err();
    assert!(e.contains("needs an object input"), "{e}");
    for bad in ["{foo}", "{}", "{input.}", "{inputx}", "{ input }"] {
        let e = fmt(bad, json!({"": 1})).unwrap_err();
        assert!(e.contains("unknown placeholder"), "{bad}: {e}");
    }
    assert!(fmt("{input", json!(1)).unwrap_err().contains("unclosed"));
    assert!(fmt("a } b", json!(1)).unwrap_err().contains("single `}`"));
    // Template errors come first, even when the input would also be wrong.
    assert!(
        fmt("{nope}", json!(1))
            .unwrap_err()
            .contains("unknown placeholder")
    );
}

#[test]
fn upper_lower_len() {
    assert_eq!(ok("upper", json!("abc ß")), json!("ABC SS"));
    assert_eq!(ok("lower", json!("ÀB")), json!("àb"));
    err("upper", json!(1));
    assert_eq!(
        err("lower", json!(null)),
        "lower expects a string, got null"
    );

    assert_eq!(ok("len", json!("héllo")), json!(5));
    assert_eq!(ok("len", json!([1, 2, 3])), json!(3));
    assert_eq!(ok("len", json!({"a": 1, "b": 2})), json!(2));
    assert_eq!(ok("len", json!("")), json!(0));
    err("len", json!(5));
    err("len", json!(null));
}

#[test]
fn sha256_of_strings() {
    assert_eq!(
        ok("sha256", json!("abc")),
        json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        ok("sha256", json!("")),
        json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    err("sha256", json!(1));
}

// --- time ---

#[test]
fn sleep_sleeps_and_returns_input() {
    let start = Instant::now();
    assert_eq!(ok("sleep", json!(0.05)), json!(0.05));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(ok("sleep", json!(0)), json!(0));
    for bad in [
        json!(-1),
        json!(-0.5),
        json!(31536001),
        json!(1e300),
        json!(u64::MAX),
    ] {
        let e = err("sleep", bad);
        assert!(e.starts_with("sleep expects a number of seconds"), "{e}");
    }
    err("sleep", json!("1"));
}

// --- number theory ---

#[test]
fn fib_values_and_limit() {
    assert_eq!(ok("fib", json!(0)), json!(0));
    assert_eq!(ok("fib", json!(1)), json!(1));
    assert_eq!(ok("fib", json!(10)), json!(55));
    assert_eq!(ok("fib", json!(93)), json!(12200160415121876738u64));
    let e = err("fib", json!(94));
    assert!(e.contains("overflow") && e.contains("93"), "{e}");
    err("fib", json!(u64::MAX));
    err("fib", json!(-1));
    err("fib", json!(3.0));
    err("fib", json!("3"));
}

#[test]
fn is_prime_known_values() {
    for p in [
        2u64,
        3,
        5,
        37,
        41,
        7919,
        1_000_000_007,
        4294967291,
        18446744073709551557,
    ] {
        assert_eq!(ok("is_prime", json!(p)), json!(true), "{p}");
    }
    // Includes Carmichael numbers and strong pseudoprimes to small bases.
    for c in [
        0u64,
        1,
        4,
        561,
        1105,
        2047,
        3215031751,
        3825123056546413051,
        4294967291 * 4294967279,
        u64::MAX,
        1 << 63,
    ] {
        assert_eq!(ok("is_prime", json!(c)), json!(false), "{c}");
    }
    assert_eq!(ok("is_prime", json!(-7)), json!(false));
    assert_eq!(ok("is_prime", json!(i64::MIN)), json!(false));
    err("is_prime", json!(7.0));
    err("is_prime", json!("7"));
}

#[test]
fn is_prime_agrees_with_sieve() {
    const N: usize = 20_000;
    let mut sieve = vec![true; N];
    sieve[0] = false;
    sieve[1] = false;
    for i in 2..N {
        if sieve[i] {
            for j in (i * i..N).step_by(i) {
                sieve[j] = false;
            }
        }
    }
    for (n, &prime) in sieve.iter().enumerate() {
        assert_eq!(is_prime_u64(n as u64), prime, "{n}");
    }
}

#[test]
fn factorize_values() {
    assert_eq!(ok("factorize", json!(1)), json!([]));
    assert_eq!(ok("factorize", json!(2)), json!([2]));
    assert_eq!(ok("factorize", json!(360)), json!([2, 2, 2, 3, 3, 5]));
    assert_eq!(
        ok("factorize", json!(600851475143u64)),
        json!([71, 839, 1471, 6857])
    );
    assert_eq!(ok("factorize", json!(1u64 << 63)), json!(vec![2; 63]));
    assert_eq!(
        ok("factorize", json!(18446744073709551557u64)),
        json!([18446744073709551557u64])
    );
    assert_eq!(
        ok("factorize", json!(u64::MAX)),
        json!([3, 5, 17, 257, 641, 65537, 6700417])
    );
    err("factorize", json!(0));
    err("factorize", json!(-12));
    err("factorize", json!(12.0));
    err("factorize", json!("12"));
}

#[test]
fn factorize_hard_numbers_fast() {
    let start = Instant::now();
    let cases: [(u64, &[u64]); 4] = [
        (4294967279 * 4294967291, &[4294967279, 4294967291]),
        (4294967291 * 4294967291, &[4294967291, 4294967291]),
        (1009 * 1009 * 1013, &[1009, 1009, 1013]),
        (2147483647 * 2147483629 * 3, &[3, 2147483629, 2147483647]),
    ];
    for (n, factors) in cases {
        assert_eq!(ok("factorize", json!(n)), json!(factors), "{n}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn factorize_products_multiply_back() {
    // A cheap deterministic sweep of large numbers: factors are prime and multiply back.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..300 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = x | 1;
        let factors = prime_factors(n).unwrap();
        assert!(factors.iter().all(|&f| is_prime_u64(f)), "{n}: {factors:?}");
        assert!(factors.windows(2).all(|w| w[0] <= w[1]));
        let product = factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f));
        assert_eq!(product, Some(n));
    }
}

#[test]
fn collatz_values() {
    assert_eq!(ok("collatz_steps", json!(1)), json!(0));
    assert_eq!(ok("collatz_steps", json!(2)), json!(1));
    assert_eq!(ok("collatz_steps", json!(27)), json!(111));
    assert_eq!(ok("collatz_steps", json!(837799)), json!(524));
    // Its trajectory climbs above u64::MAX; we walk in u128 so it still answers.
    let big = ok("collatz_steps", json!(u64::MAX));
    assert!(big.as_u64().is_some_and(|s| s > 0), "{big}");
    err("collatz_steps", json!(0));
    err("collatz_steps", json!(-5));
    err("collatz_steps", json!(2.0));
    err("collatz_steps", json!([]));
}

// --- files ---

#[test]
fn sha256_file_matches_string_hash() {
    let content = "abc".repeat(50_000); // spans several 64 KiB chunks
    let file = TempFile::new(content.as_bytes());
    assert_eq!(ok("sha256_file", file.json()), ok("sha256", json!(content)));
    let empty = TempFile::new(b"");
    assert_eq!(ok("sha256_file", empty.json()), ok("sha256", json!("")));
}

#[test]
fn file_errors_name_path_and_os_error() {
    let missing = std::env::temp_dir().join("runjobs-builtins-test-does-not-exist.txt");
    let path = missing.to_str().unwrap();
    for name in ["sha256_file", "line_count", "word_count"] {
        let e = err(name, json!(path));
        assert!(e.starts_with(&format!("cannot read `{path}`: ")), "{e}");
        assert!(e.contains("os error"), "{e}");
        assert!(err(name, json!(1)).contains("expects a path string"));
        assert!(err(name, json!("")).contains("empty string"));
        // A directory opens on Unix but fails to read: still an error, not a panic.
        err(name, json!(std::env::temp_dir().to_str().unwrap()));
    }
}

#[test]
fn relative_paths_resolve_against_current_dir() {
    // Cargo runs tests in the crate root, which has Cargo.toml.
    let n = ok("line_count", json!("Cargo.toml"));
    assert!(n.as_u64().is_some_and(|n| n > 0));
}

#[test]
fn line_count_cases() {
    let cases: [(&[u8], u64); 7] = [
        (b"", 0),
        (b"\n", 1),
        (b"a", 1),
        (b"a\n", 1),
        (b"a\nb", 2),
        (b"a\n\nb\n", 3),
        (b"\xff\xfe\n\x00", 2),
    ];
    for (content, lines) in cases {
        let file = TempFile::new(content);
        assert_eq!(ok("line_count", file.json()), json!(lines), "{content:?}");
    }
    // Across chunk boundaries, with and without a final newline.
    let many = "line\n".repeat(100_000);
    let file = TempFile::new(many.as_bytes());
    assert_eq!(ok("line_count", file.json()), json!(100_000));
    let file = TempFile::new(format!("{many}tail").as_bytes());
    assert_eq!(ok("line_count", file.json()), json!(100_001));
}

#[test]
fn word_count_cases() {
    let cases: [(&[u8], u64); 8] = [
        (b"", 0),
        (b"   \n\t ", 0),
        (b"one", 1),
        (b"one two\tthree\nfour", 4),
        (b"  lead and trail  ", 3),
        ("non\u{00A0}breaking\u{3000}space".as_bytes(), 3),
        (b"bad\xffbytes are words", 3),
        (b"\xff \xfe", 2),
    ];
    for (content, words) in cases {
        let file = TempFile::new(content);
        assert_eq!(ok("word_count", file.json()), json!(words), "{content:?}");
    }
}

#[test]
fn word_count_multibyte_whitespace_across_chunks() {
    // Put a 3-byte ideographic space (U+3000) across the 64 KiB chunk boundary.
    let mut content = vec![b'a'; CHUNK - 1];
    content.extend_from_slice("\u{3000}b c".as_bytes());
    let file = TempFile::new(&content);
    assert_eq!(ok("word_count", file.json()), json!(3));
    // And a truncated sequence at the very end of the file counts as a word char.
    let mut counter = WordCounter::default();
    counter.feed(b"x \xe3\x80");
    assert_eq!(counter.finish(), 2);
}

#[test]
fn complete_prefix_len_cases() {
    assert_eq!(complete_prefix_len(b""), 0);
    assert_eq!(complete_prefix_len(b"ab"), 2);
    assert_eq!(complete_prefix_len("é".as_bytes()), 2);
    assert_eq!(complete_prefix_len(b"a\xc3"), 1);
    assert_eq!(complete_prefix_len(b"a\xe3\x80"), 1);
    assert_eq!(complete_prefix_len(b"a\xf0\x9f\x98"), 1);
    assert_eq!(complete_prefix_len("a😀".as_bytes()), 5);
    assert_eq!(complete_prefix_len(b"\x80\x80\x80\x80"), 4);
}

// --- robustness ---

#[test]
fn odd_inputs_never_panic() {
    let odd = [
        json!(null),
        json!(true),
        json!(false),
        json!(-1),
        json!(0),
        json!(1),
        json!(1.5),
        json!(-1.5),
        json!(1e308),
        json!(-1e308),
        json!(5e-324),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("{input}"),
        json!("\u{0}\u{FFFF}😀"),
        json!([]),
        json!([1, "a"]),
        json!([u64::MAX, u64::MAX]),
        json!([1e308, -1e308]),
        json!({}),
        json!({"a": 1}),
        json!({"a": u64::MAX, "b": u64::MAX}),
        json!({"a": null, "b": 1}),
    ];
    let templates = [
        None,
        Some(""),
        Some("{input}"),
        Some("{input.a}"),
        Some("{"),
        Some("}"),
        Some("{{}}"),
        Some("{input.}"),
        Some("{input.a"),
        Some("😀{input}😀"),
    ];
    for b in all() {
        for input in &odd {
            if b.name == "sleep" && num_of(input).is_some_and(|n| as_f64(n) > 0.01) {
                continue;
            }
            for template in templates {
                let options = Options {
                    template: template.map(str::to_string),
                };
                // Must return (Ok or Err), never panic; errors must say something.
                if let Err(e) = b.call(input, &options) {
                    assert!(!e.is_empty(), "{} on {input}", b.name);
                }
            }
        }
    }
}
