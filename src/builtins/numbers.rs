//! Arithmetic (`square`, `cube`, `double`, `negate`, `identity`, `add`, `sum`) and number
//! theory (`fib`, `is_prime`, `factorize`, `collatz_steps`).

use serde_json::Value;

use super::Options;
use super::values::*;

pub(super) fn square(v: &Value, _: &Options) -> Result<Value, String> {
    unary("square", v, |i| i.checked_mul(i), |f| f * f)
}

pub(super) fn cube(v: &Value, _: &Options) -> Result<Value, String> {
    unary(
        "cube",
        v,
        |i| i.checked_mul(i).and_then(|sq| sq.checked_mul(i)),
        |f| f * f * f,
    )
}

pub(super) fn double(v: &Value, _: &Options) -> Result<Value, String> {
    unary("double", v, |i| i.checked_mul(2), |f| f * 2.0)
}

pub(super) fn negate(v: &Value, _: &Options) -> Result<Value, String> {
    // In i128 negating i64::MIN gives 2^63, which fits u64 and is the right answer.
    unary("negate", v, |i| i.checked_neg(), |f| -f)
}

pub(super) fn identity(v: &Value, _: &Options) -> Result<Value, String> {
    Ok(v.clone())
}

pub(super) fn add(v: &Value, _: &Options) -> Result<Value, String> {
    const EXPECTED: &str = "a table {a, b} of two numbers";
    let obj = v
        .as_object()
        .ok_or_else(|| type_error("add", EXPECTED, v))?;
    // Unknown keys are refused: a typo like `A = 1` should not silently become an error
    // about a missing `a`, or worse, be ignored.
    if let Some(extra) = obj.keys().find(|k| *k != "a" && *k != "b") {
        return Err(format!(
            "add expects {EXPECTED}, got unexpected key `{extra}`"
        ));
    }
    let operand = |key: &str| -> Result<Num, String> {
        let x = obj
            .get(key)
            .ok_or_else(|| format!("add expects {EXPECTED}, but `{key}` is missing"))?;
        num_of(x).ok_or_else(|| format!("add expects `{key}` to be a number, got {}", describe(x)))
    };
    let (a, b) = (operand("a")?, operand("b")?);
    let call = || {
        format!(
            "add({}, {})",
            obj.get("a").map(shown).unwrap_or_default(),
            obj.get("b").map(shown).unwrap_or_default()
        )
    };
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => arith(call, Num::Int(x), |x| x.checked_add(y), |f| f),
        _ => arith(call, Num::Float(as_f64(a) + as_f64(b)), Some, |f| f),
    }
}

pub(super) fn sum(v: &Value, _: &Options) -> Result<Value, String> {
    const EXPECTED: &str = "an array of numbers";
    let items = v.as_array().ok_or_else(|| type_error("sum", EXPECTED, v))?;
    let mut nums = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = num_of(item).ok_or_else(|| {
            format!(
                "sum expects {EXPECTED}, got {} at index {i}",
                describe(item)
            )
        })?;
        nums.push(n);
    }
    let call = || format!("sum of {} numbers", nums.len());
    if nums.iter().all(|n| matches!(n, Num::Int(_))) {
        // i128 cannot overflow on any realistic array, but check anyway: never wrong.
        let total = nums.iter().try_fold(0i128, |acc, n| match n {
            Num::Int(i) => acc.checked_add(*i),
            Num::Float(_) => None,
        });
        match total {
            Some(t) => arith(call, Num::Int(t), Some, |f| f),
            None => Err(format!(
                "overflow: {} does not fit in a 64-bit integer",
                call()
            )),
        }
    } else {
        let total: f64 = nums.iter().map(|n| as_f64(*n)).sum();
        arith(call, Num::Float(total), Some, |f| f)
    }
}

/// Largest n whose Fibonacci number fits u64.
pub(super) const MAX_FIB: u64 = 93;

pub(super) fn fib(v: &Value, _: &Options) -> Result<Value, String> {
    let n = expect_int("fib", "a non-negative integer", v)?;
    let n = u64::try_from(n).map_err(|_| type_error("fib", "a non-negative integer", v))?;
    if n > MAX_FIB {
        return Err(format!(
            "overflow: fib({n}) does not fit in a 64-bit integer (the largest n that fits is {MAX_FIB})"
        ));
    }
    if n == 0 {
        return Ok(Value::from(0u64));
    }
    // Invariant: (a, b) = (fib(i - 1), fib(i)); stopping at i = n means we never compute
    // fib(n + 1), which for n = 93 would not fit.
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 1..n {
        // Cannot fail for n <= 93, but checked so a wrong MAX_FIB could never wrap.
        let next = a
            .checked_add(b)
            .ok_or_else(|| format!("overflow: fib({n}) does not fit in a 64-bit integer"))?;
        (a, b) = (b, next);
    }
    Ok(Value::from(b))
}

pub(super) fn is_prime(v: &Value, _: &Options) -> Result<Value, String> {
    let n = expect_int("is_prime", "an integer", v)?;
    // Negative numbers, 0 and 1 are not prime; inputs never exceed u64.
    Ok(Value::Bool(u64::try_from(n).is_ok_and(is_prime_u64)))
}

pub(super) fn factorize(v: &Value, _: &Options) -> Result<Value, String> {
    let expected = "an integer >= 1";
    let n = expect_int("factorize", expected, v)?;
    let n = u64::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| type_error("factorize", expected, v))?;
    let factors = prime_factors(n).map_err(|e| format!("factorize({n}): {e}"))?;
    Ok(Value::Array(factors.into_iter().map(Value::from).collect()))
}

pub(super) fn collatz_steps(v: &Value, _: &Options) -> Result<Value, String> {
    // Far above the longest known trajectory of any 64-bit start (under 3000 steps); only
    // a counterexample to the Collatz conjecture could hit it, and then we must not hang.
    const MAX_STEPS: u64 = 1_000_000;
    let expected = "an integer >= 1";
    let start = expect_int("collatz_steps", expected, v)?;
    let start = u64::try_from(start)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| type_error("collatz_steps", expected, v))?;
    // Trajectories of 64-bit starts climb above u64::MAX, so walk in u128 (still checked).
    let mut n = u128::from(start);
    let mut steps = 0u64;
    while n != 1 {
        n = if n % 2 == 0 {
            n / 2
        } else {
            n.checked_mul(3)
                .and_then(|m| m.checked_add(1))
                .ok_or_else(|| format!("overflow: collatz_steps({start}) exceeds 128 bits"))?
        };
        steps += 1;
        if steps > MAX_STEPS {
            return Err(format!(
                "collatz_steps({start}) did not reach 1 within {MAX_STEPS} steps"
            ));
        }
    }
    Ok(Value::from(steps))
}

pub(super) fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    // The remainder is < m <= u64::MAX, so the narrowing cast is exact.
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

pub(super) fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut result = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    result
}

/// Deterministic Miller-Rabin: the first 12 primes as bases are exact for all n < 3.3e24,
/// which covers u64.
pub(super) fn is_prime_u64(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    // n is odd and > 37 here, so n - 1 is even and non-zero.
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Prime factors of n >= 1, ascending with repetition. Trial division strips small
/// factors cheaply; what is left splits with Pollard-Brent, whose cost grows with the
/// square root of the smallest factor (at most ~2^16 steps for u64), so any u64
/// finishes in milliseconds.
pub(super) fn prime_factors(mut n: u64) -> Result<Vec<u64>, String> {
    const TRIAL_LIMIT: u64 = 1000;
    let mut factors = Vec::new();
    let mut d = 2;
    while d <= TRIAL_LIMIT && d * d <= n {
        while n.is_multiple_of(d) {
            factors.push(d);
            n /= d;
        }
        d += if d == 2 { 1 } else { 2 };
    }
    split_large(n, &mut factors)?;
    factors.sort_unstable();
    Ok(factors)
}

/// Pushes the prime factors of `n` (which has no factor below the trial limit, or is 1).
pub(super) fn split_large(n: u64, factors: &mut Vec<u64>) -> Result<(), String> {
    // Each attempt uses a different polynomial x^2 + c; one almost always suffices.
    const ATTEMPTS: u64 = 200;
    if n == 1 {
        return Ok(());
    }
    if is_prime_u64(n) {
        factors.push(n);
        return Ok(());
    }
    let d = (1..=ATTEMPTS)
        .find_map(|c| pollard_brent(n, c))
        .ok_or_else(|| format!("could not split {n} (please report this)"))?;
    split_large(d, factors)?;
    split_large(n / d, factors)
}

/// Brent's variant of Pollard's rho with batched gcds. Returns a non-trivial factor of the
/// odd composite `n`, or None if this `c` failed (the caller tries another).
pub(super) fn pollard_brent(n: u64, c: u64) -> Option<u64> {
    // Products of BATCH differences share one gcd; MAX_CYCLE bounds the work per attempt
    // far above the ~2^16 steps a 64-bit n needs.
    const BATCH: u64 = 128;
    const MAX_CYCLE: u64 = 1 << 22;
    let step = |x: u64| ((u128::from(x) * u128::from(x) + u128::from(c)) % u128::from(n)) as u64;
    let (mut x, mut y, mut ys) = (2 % n, 2 % n, 2 % n);
    let (mut q, mut g, mut r) = (1u64, 1u64, 1u64);
    while g == 1 {
        if r > MAX_CYCLE {
            return None;
        }
        x = y;
        for _ in 0..r {
            y = step(y);
        }
        let mut k = 0;
        while k < r && g == 1 {
            ys = y;
            for _ in 0..BATCH.min(r - k) {
                y = step(y);
                q = mul_mod(q, x.abs_diff(y), n);
            }
            g = gcd(q, n);
            k += BATCH;
        }
        r *= 2;
    }
    if g == n {
        // The batch overshot (or hit the cycle): redo it one step at a time. Some step in
        // the batch shares a factor with n, so this ends within BATCH steps.
        g = 1;
        for _ in 0..BATCH {
            ys = step(ys);
            g = gcd(x.abs_diff(ys), n);
            if g > 1 {
                break;
            }
        }
    }
    (g > 1 && g < n).then_some(g)
}
