//! The builtin functions that runjobs can map over inputs.
//!
//! This module owns the table of builtins (name, input and output type, one-line doc) and
//! their implementations. Each builtin takes one JSON input plus the per-function
//! [`Options`] from the job file and returns a JSON output or an error message.
//!
//! Contract for every builtin:
//! - no IO except what the builtin is defined to do (`sleep` sleeps, the file builtins read
//!   the file they are given); nothing here ever prints;
//! - never panic on user input: wrong types, extreme numbers and odd paths all come back
//!   as `Err` with a message naming the builtin, what it expected and what it got;
//! - never return a wrong number: integer arithmetic is done in `i128` with checked
//!   operations and must fit a 64-bit integer (`i64` or `u64`), float results must be finite.

use serde_json::Value;

mod files;
mod numbers;
mod text;
mod time;
mod values;

use files::*;
use numbers::*;
use text::*;
use time::*;

/// One builtin function: its name, a short description for `--help`-style listings, and
/// the code that runs it.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    /// Short input type, e.g. "integer", "{a, b}", "path".
    pub input: &'static str,
    /// Short output type.
    pub output: &'static str,
    /// One-line doc.
    pub doc: &'static str,
    run: fn(&Value, &Options) -> Result<Value, String>,
}

/// Per-function options from the job file. Builtins ignore options they do not use.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Template of the `format` builtin.
    pub template: Option<String>,
}

impl Builtin {
    /// Runs the builtin on one input.
    pub fn call(&self, input: &Value, options: &Options) -> Result<Value, String> {
        (self.run)(input, options)
    }
}

/// All builtins, sorted by name (so [`lookup`] can binary-search).
pub fn all() -> &'static [Builtin] {
    BUILTINS
}

/// The builtin called `name`, if any.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS
        .binary_search_by(|b| b.name.cmp(name))
        .ok()
        .and_then(|i| BUILTINS.get(i))
}

/// Names of all builtins, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

/// The one table of builtins. Keep it sorted by name; a unit test checks that.
static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "add",
        input: "{a, b}",
        output: "number",
        doc: "Adds the numbers `a` and `b` of a table",
        run: add,
    },
    Builtin {
        name: "collatz_steps",
        input: "integer >= 1",
        output: "integer",
        doc: "Number of Collatz steps (n/2 or 3n+1) to reach 1",
        run: collatz_steps,
    },
    Builtin {
        name: "cube",
        input: "number",
        output: "number",
        doc: "n * n * n",
        run: cube,
    },
    Builtin {
        name: "double",
        input: "number",
        output: "number",
        doc: "n * 2",
        run: double,
    },
    Builtin {
        name: "factorize",
        input: "integer >= 1",
        output: "array of integers",
        doc: "Prime factors in ascending order, with repetition (1 gives [])",
        run: factorize,
    },
    Builtin {
        name: "fib",
        input: "integer >= 0",
        output: "integer",
        doc: "The nth Fibonacci number (fib(0) = 0, fib(1) = 1, n <= 93)",
        run: fib,
    },
    Builtin {
        name: "format",
        input: "any",
        output: "string",
        doc: "Renders the `template` option: {input}, {input.KEY}, {{ and }}",
        run: format,
    },
    Builtin {
        name: "identity",
        input: "any",
        output: "any",
        doc: "Returns the input unchanged",
        run: identity,
    },
    Builtin {
        name: "is_prime",
        input: "integer",
        output: "boolean",
        doc: "Whether the integer is prime (deterministic Miller-Rabin)",
        run: is_prime,
    },
    Builtin {
        name: "len",
        input: "string, array or object",
        output: "integer",
        doc: "Characters of a string, elements of an array or keys of an object",
        run: len,
    },
    Builtin {
        name: "line_count",
        input: "path",
        output: "integer",
        doc: "Lines in a file (a final line without newline counts)",
        run: line_count,
    },
    Builtin {
        name: "lower",
        input: "string",
        output: "string",
        doc: "Lowercases a string",
        run: lower,
    },
    Builtin {
        name: "negate",
        input: "number",
        output: "number",
        doc: "-n",
        run: negate,
    },
    Builtin {
        name: "print_number",
        input: "number",
        output: "string",
        doc: "The string \"Process n: n\"",
        run: print_number,
    },
    Builtin {
        name: "sha256",
        input: "string",
        output: "string",
        doc: "Lowercase hex SHA-256 of the string's UTF-8 bytes",
        run: sha256,
    },
    Builtin {
        name: "sha256_file",
        input: "path",
        output: "string",
        doc: "Lowercase hex SHA-256 of a file's content",
        run: sha256_file,
    },
    Builtin {
        name: "sleep",
        input: "seconds",
        output: "same as input",
        doc: "Sleeps that many seconds (0 to one year) and returns the input",
        run: sleep,
    },
    Builtin {
        name: "square",
        input: "number",
        output: "number",
        doc: "n * n",
        run: square,
    },
    Builtin {
        name: "sum",
        input: "array of numbers",
        output: "number",
        doc: "Sum of the numbers ([] gives 0)",
        run: sum,
    },
    Builtin {
        name: "upper",
        input: "string",
        output: "string",
        doc: "Uppercases a string",
        run: upper,
    },
    Builtin {
        name: "word_count",
        input: "path",
        output: "integer",
        doc: "Whitespace-separated words in a file",
        run: word_count,
    },
];

#[cfg(test)]
mod tests;
