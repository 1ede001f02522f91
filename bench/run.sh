#!/usr/bin/env bash
# Benchmarks runjobs against its peers (Python multiprocessing.Pool, ...). See bench/README.md.
#
#   bench/run.sh              run every case
#   bench/run.sh square_1m    run only the cases matching a name or glob ('square_*')
#   bench/run.sh --list       list the cases
#
# Environment: BENCH_RUNS (timed runs per command, default 5; the median is reported),
# BENCH_NO_BUILD=1 (use the existing target/release/runjobs), BENCH_BIN (another runjobs
# binary; implies no build), BENCH_KEEP=1 (keep the temp dir and its log), BENCH_STRICT=1
# (exit 1 when a goal is missed), PYTHON (default python3).
#
# Adding a case: write a function case_NAME that sets up its commands, checks their output
# once with run_checked + a check, then calls compare (runjobs vs a peer, goal = ratio) or
# add_row itself; append NAME to CASES.
set -euo pipefail
export LC_ALL=C # '.' as decimal separator in $EPOCHREALTIME, printf and awk

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BIN=${BENCH_BIN:-"$ROOT/target/release/runjobs"}
PYTHON=${PYTHON:-python3}
RUNS=${BENCH_RUNS:-5}
TIME_BIN=/usr/bin/time
CHECK=("$PYTHON" "$BENCH_DIR/py/check.py")

CASES=(square_1m square_1m_replace journal_1m toml_1m toml_1m_square square_spec rss_10m_jsonl rss_1m_toml report_1m reuse_1m true_2000_floor echo_2000_floor true_2000_xargs true_2000_parallel exec_true_2000 py_square_4 py_square_100k py_square_1m echo_worker_1m slurm_1000)

# ---------------------------------------------------------------------------- helpers

TMP=""
LOG=""
ROWS=()   # tab-separated: case, runjobs s, peer s, peer/runjobs, peak RSS, goal, verdict
MISSED=0

log() { printf '%s\n' "$*" >&2; }

die() {
    log "bench: error: $*"
    if [[ -n $LOG && -s $LOG ]]; then
        log "--- last lines of $LOG:"
        tail -n 20 "$LOG" >&2
    fi
    exit 1
}

cleanup() {
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then
            log "bench: kept $TMP (log: $LOG)"
        else
            rm -rf "$TMP"
        fi
    fi
}

# seconds (6 decimals) between two $EPOCHREALTIME values, pure bash (no fork in the timing)
elapsed() {
    local us=$(( ${2/./} - ${1/./} ))
    printf '%d.%06d' $((us / 1000000)) $((us % 1000000))
}

# run_checked LABEL CMD... : run CMD once; stdout -> $TMP/stdout, stderr appended to $LOG;
# abort unless it exits 0. Sets ELAPSED (wall seconds).
ELAPSED=""
run_checked() {
    local label=$1; shift
    local t0 t1 rc=0
    printf '\n### %s: %s\n' "$label" "$*" >>"$LOG"
    t0=$EPOCHREALTIME
    "$@" >"$TMP/stdout" 2>>"$LOG" || rc=$?
    t1=$EPOCHREALTIME
    ((rc == 0)) || die "$label failed (exit $rc): $*"
    ELAPSED=$(elapsed "$t0" "$t1")
}

# check LABEL CMD... : a correctness check; abort with its message if it fails
check() {
    local label=$1; shift
    local msg
    msg=$("$@" 2>&1) || die "$label: wrong output: $msg"
}

median() { # numbers on stdin -> their median
    sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) exit 1
              if (NR % 2) printf "%.4f", a[(NR + 1) / 2]
              else        printf "%.4f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

fmt_mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

add_row() { # case runjobs_s peer_s ratio rss goal verdict
    local IFS=$'\t'
    ROWS+=("$*")
    [[ $7 != MISSED ]] || MISSED=1
    log "bench: $1: runjobs $2 s | peer $3 s | peer/runjobs $4 | peak RSS $5 | goal $6 | $7"
}

skip_case() { # case reason
    add_row "$1" - - - - - "skipped: $2"
}

# compare CASE GOAL RJ_ARRAY PEER_ARRAY [FRESH_ARRAY] : time both commands $RUNS times,
# interleaved (so drift hits both alike), and add a row with the medians and
# peer/runjobs >= GOAL (GOAL "info": no goal). The files of FRESH_ARRAY (both sides'
# outputs) are removed before every timed run, so each run writes its output afresh.
# The commands must already have been run and checked once (warm-up).
compare() {
    local name=$1 goal=$2
    local -n _rj=$3 _peer=$4
    local no_fresh=()
    local -n _fresh=${5:-no_fresh}
    local i rj_times=() peer_times=()
    for ((i = 1; i <= RUNS; i++)); do
        rm -f "${_fresh[@]}"
        run_checked "$name runjobs #$i" "${_rj[@]}"
        rj_times+=("$ELAPSED")
        rm -f "${_fresh[@]}"
        run_checked "$name peer #$i" "${_peer[@]}"
        peer_times+=("$ELAPSED")
    done
    local rj_med peer_med ratio verdict
    rj_med=$(printf '%s\n' "${rj_times[@]}" | median)
    peer_med=$(printf '%s\n' "${peer_times[@]}" | median)
    printf '### %s times: runjobs %s | peer %s\n' "$name" "${rj_times[*]}" "${peer_times[*]}" >>"$LOG"
    ratio=$(awk -v r="$rj_med" -v p="$peer_med" 'BEGIN { printf "%.2f", (r > 0 ? p / r : 0) }')
    if [[ $goal == info ]]; then
        add_row "$name" "$rj_med" "$peer_med" "${ratio}x" - - info
        return
    fi
    if awk -v x="$ratio" -v g="$goal" 'BEGIN { exit !(x >= g) }'; then verdict=ok; else verdict=MISSED; fi
    add_row "$name" "$rj_med" "$peer_med" "${ratio}x" - ">= ${goal}x" "$verdict"
}

# ---------------------------------------------------------------------------- cases

# 1. builtin square over range(0, 1M), 2 workers, JSON file
#    vs Pool(2).map(square, range(1_000_000)) + json.dump
#    square_1m: each timed run writes its output afresh (the outputs of the run before are
#    removed first, on both sides). square_1m_replace: each run replaces the output of the
#    run before, which on ext4 also pays for starting the write-back of the new file
#    (auto_da_alloc): runjobs' 133 MB of records against Python's 13.5 MB list.
square_1m_commands() {
    local n=1000000
    rj=("$BIN" "$BENCH_DIR/jobs/square_1m.toml" -o "$TMP/out.json")
    peer=("$PYTHON" "$BENCH_DIR/py/pool_square.py" "$n" 2 "$TMP/py.json")
    run_checked "$1 runjobs (check)" "${rj[@]}"
    check "$1 runjobs" "${CHECK[@]}" json "$TMP/out.json" "$n"
    run_checked "$1 peer (check)" "${peer[@]}"
    check "$1 peer" "${CHECK[@]}" pylist "$TMP/py.json" "$n"
}

case_square_1m() {
    local rj peer outputs=("$TMP/out.json" "$TMP/py.json")
    square_1m_commands square_1m
    compare square_1m 5 rj peer outputs
    rm -f "${outputs[@]}"
}

case_square_1m_replace() {
    local rj peer
    square_1m_commands square_1m_replace
    compare square_1m_replace info rj peer
    rm -f "$TMP/out.json" "$TMP/py.json"
}

# 1b. the cost of the journal: square_1m as above (journal on, the default) vs the same run
#     with --no-journal, both writing afresh; the journal may cost at most 10%
#     (peer/runjobs >= 1/1.1)
case_journal_1m() {
    local n=1000000
    local rj=("$BIN" "$BENCH_DIR/jobs/square_1m.toml" -o "$TMP/journal.json")
    local peer=("$BIN" "$BENCH_DIR/jobs/square_1m.toml" -o "$TMP/nojournal.json" --no-journal)
    run_checked "journal_1m journal (check)" "${rj[@]}"
    check "journal_1m journal" "${CHECK[@]}" json "$TMP/journal.json" "$n"
    [[ ! -e $TMP/journal.json.journal ]] || die "journal_1m: the journal outlived a finished run"
    run_checked "journal_1m no journal (check)" "${peer[@]}"
    check "journal_1m no journal" "${CHECK[@]}" json "$TMP/nojournal.json" "$n"
    local outputs=("$TMP/journal.json" "$TMP/nojournal.json")
    compare journal_1m 0.91 rj peer outputs
    rm -f "${outputs[@]}"
}

# 1c. TOML results, streamed too (results in input order to a spool file, then the
#     top-level keys and the spool): 1M `lines` items (`upper`) written as TOML vs as JSON,
#     both afresh; TOML may take at most 2x JSON's time (peer/runjobs >= 0.5).
#     toml_1m_square: the same for square_1m, whose JSON records are copied from the
#     journal by the kernel, never read by runjobs: TOML has to read and rewrite them (info).
toml_vs_json() { # case goal job n check
    local name=$1 goal=$2 job=$3 n=$4 kind=$5
    local rj=("$BIN" "$job" -o "$TMP/out.toml")
    local peer=("$BIN" "$job" -o "$TMP/out.json")
    run_checked "$name toml (check)" "${rj[@]}"
    check "$name toml" "${CHECK[@]}" "$kind" "$TMP/out.toml" "$n"
    run_checked "$name json (check)" "${peer[@]}"
    local outputs=("$TMP/out.toml" "$TMP/out.json")
    compare "$name" "$goal" rj peer outputs
    rm -f "${outputs[@]}"
}

case_toml_1m() {
    local n=1000000
    seq 1 "$n" | sed 's/^/item-/' >"$TMP/lines.txt"
    printf '[[task]]\nfunction = "upper"\ninputs = { lines = "lines.txt" }\n' >"$TMP/upper_lines.toml"
    toml_vs_json toml_1m 0.5 "$TMP/upper_lines.toml" "$n" toml-upper
    rm -f "$TMP/lines.txt"
}

case_toml_1m_square() {
    toml_vs_json toml_1m_square info "$BENCH_DIR/jobs/square_1m.toml" 1000000 toml
}

# 2. the shipped jobs/square.toml end to end (start-up, 4 workers, 4 items)
#    vs the Pool script of SPEC.md section 1
case_square_spec() {
    local rj=("$BIN" jobs/square.toml -o "$TMP/sq.json")
    local peer=("$PYTHON" "$BENCH_DIR/py/spec_pool.py")
    run_checked "square_spec runjobs (check)" "${rj[@]}"
    check "square_spec runjobs" "${CHECK[@]}" json "$TMP/sq.json" 4 --inputs 1,2,3,4
    run_checked "square_spec peer (check)" "${peer[@]}"
    [[ $(<"$TMP/stdout") == "[1, 4, 9, 16]" ]] ||
        die "square_spec peer printed '$(<"$TMP/stdout")', want '[1, 4, 9, 16]'"
    compare square_spec 5 rj peer
}

# 3. 10M streamed items to JSON Lines: peak RSS (one run)
case_rss_10m_jsonl() {
    local n=10000000 goal_mib=64
    if [[ ! -x $TIME_BIN ]]; then
        skip_case rss_10m_jsonl "$TIME_BIN not found (Debian package 'time'), no RSS"
        return
    fi
    local out="$TMP/x.jsonl"
    # GNU time reports ru_maxrss: the largest single process among runjobs and its reaped
    # children (workers), not their sum.
    run_checked "rss_10m_jsonl runjobs" \
        "$TIME_BIN" -f '%e %M' -o "$TMP/time.out" "$BIN" "$BENCH_DIR/jobs/square_10m_jsonl.toml" -o "$out"
    local wall=$ELAPSED time_e kb verdict # wall from $EPOCHREALTIME (4 decimals, not %e's 2)
    check "rss_10m_jsonl runjobs" "${CHECK[@]}" jsonl "$out" "$n"
    rm -f "$out"
    read -r time_e kb < <(tail -n 1 "$TMP/time.out")
    printf '### rss_10m_jsonl: %s\n' "$(<"$TMP/time.out")" >>"$LOG"
    [[ $kb =~ ^[0-9]+$ ]] || die "rss_10m_jsonl: cannot parse $TIME_BIN output: $(<"$TMP/time.out")"
    if ((kb < goal_mib * 1024)); then verdict=ok; else verdict=MISSED; fi
    add_row rss_10m_jsonl "$(printf '%.4f' "$wall")" - - "$(fmt_mib "$kb")" "< $goal_mib MiB" "$verdict"
}

# 3b. 1M items to TOML: peak RSS (one run); TOML is streamed like JSON
case_rss_1m_toml() {
    local n=1000000 goal_mib=64
    if [[ ! -x $TIME_BIN ]]; then
        skip_case rss_1m_toml "$TIME_BIN not found (Debian package 'time'), no RSS"
        return
    fi
    local out="$TMP/rss.toml"
    run_checked "rss_1m_toml runjobs" \
        "$TIME_BIN" -f '%e %M' -o "$TMP/time.out" "$BIN" "$BENCH_DIR/jobs/square_1m.toml" -o "$out"
    local wall=$ELAPSED time_e kb verdict
    rm -f "$out"
    read -r time_e kb < <(tail -n 1 "$TMP/time.out")
    [[ $kb =~ ^[0-9]+$ ]] || die "rss_1m_toml: cannot parse $TIME_BIN output: $(<"$TMP/time.out")"
    if ((kb < goal_mib * 1024)); then verdict=ok; else verdict=MISSED; fi
    add_row rss_1m_toml "$(printf '%.4f' "$wall")" - - "$(fmt_mib "$kb")" "< $goal_mib MiB" "$verdict"
}

# 3c. `runjobs report` on square_1m's 1M results (JSON), with the HTML page: wall time and peak
#     RSS (goal: under 1 s and 200 MiB; it streams), and the page's size (goal: a few MB)
case_report_1m() {
    if [[ ! -x $TIME_BIN ]]; then
        skip_case report_1m "$TIME_BIN not found (Debian package 'time'), no RSS"
        return
    fi
    local n=1000000 results="$TMP/report.json" page="$TMP/report.html"
    run_checked "report_1m results" "$BIN" "$BENCH_DIR/jobs/square_1m.toml" -o "$results"
    run_checked "report_1m report" \
        "$TIME_BIN" -f '%e %M' -o "$TMP/time.out" "$BIN" report "$results" --html "$page"
    grep -q "$n items: $n ok" "$TMP/stdout" || die "report_1m: the summary does not count $n ok items"
    local wall=$ELAPSED time_e kb verdict size
    read -r time_e kb < <(tail -n 1 "$TMP/time.out")
    size=$(stat -c %s "$page")
    rm -f "$results" "$page"
    if ((kb < 200 * 1024)) && awk -v w="$wall" 'BEGIN { exit !(w < 1) }' && ((size < 4000000)); then
        verdict=ok
    else
        verdict=MISSED
    fi
    add_row report_1m "$(printf '%.4f' "$wall")" - "html $((size / 1024)) KiB" "$(fmt_mib "$kb")" "< 1 s, < 200 MiB" "$verdict"
}

# reuse_1m: a new run of square_1m's job grown by one input, with `--reuse` of square_1m's
# 1M results: time and peak RSS of reading, matching and copying them (goal: < 100 MiB);
# the peer is the same job computing all of its items.
case_reuse_1m() {
    if [[ ! -x $TIME_BIN ]]; then
        skip_case reuse_1m "$TIME_BIN not found (Debian package 'time'), no RSS"
        return
    fi
    local from="$TMP/reuse-from.json" out="$TMP/reuse.json" job="$BENCH_DIR/jobs/reuse_1m.toml"
    run_checked "reuse_1m earlier results" "$BIN" "$BENCH_DIR/jobs/square_1m.toml" -o "$from"
    run_checked "reuse_1m fresh" "$BIN" "$job" -o "$out"
    local fresh=$ELAPSED
    rm -f "$out"
    run_checked "reuse_1m reuse" "$TIME_BIN" -f '%e %M' -o "$TMP/time.out" \
        "$BIN" "$job" -o "$out" --reuse "$from"
    local wall=$ELAPSED time_e kb verdict
    read -r time_e kb < <(tail -n 1 "$TMP/time.out")
    grep -q "1000001 ok (1000000 reused)" "$LOG" || die "reuse_1m: the summary does not count 1M reused"
    rm -f "$from" "$out"
    if ((kb < 100 * 1024)); then verdict=ok; else verdict=MISSED; fi
    add_row reuse_1m "$(printf '%.4f' "$wall")" "$(printf '%.4f' "$fresh")" \
        "$(awk -v a="$fresh" -v b="$wall" 'BEGIN { printf "%.2fx", a / b }')" \
        "$(fmt_mib "$kb")" "< 100 MiB" "$verdict"
}

# ---------------------------------------------------------------------------- main

# 4. 2000 processes of `true ITEM`, 2 at a time, vs xargs -P2 (goal: at most 1.1x xargs'
#    wall time, i.e. peer/runjobs >= 0.91) and GNU parallel -j2 (goal: >= 5x faster).
case_true_2000_xargs() {
    local rj=("$BIN" "$BENCH_DIR/jobs/true_2000.toml" -o "$TMP/true.jsonl")
    local peer=(sh -c 'seq 2000 | xargs -P2 -n1 true')
    run_checked "true_2000 runjobs (check)" "${rj[@]}"
    [[ $(wc -l <"$TMP/true.jsonl") == 2001 ]] || die "true_2000: want 2001 lines in $TMP/true.jsonl"
    run_checked "true_2000 xargs (check)" "${peer[@]}"
    compare true_2000_xargs 0.91 rj peer
}

case_true_2000_parallel() {
    if ! command -v parallel >/dev/null; then
        skip_case true_2000_parallel "GNU parallel not installed (Debian package 'parallel')"
        return
    fi
    local rj=("$BIN" "$BENCH_DIR/jobs/true_2000.toml" -o "$TMP/true.jsonl")
    local peer=(sh -c 'seq 2000 | parallel -j2 true')
    run_checked "true_2000 runjobs (check)" "${rj[@]}"
    run_checked "true_2000 parallel (check)" "${peer[@]}"
    compare true_2000_parallel 5 rj peer
}

# 4a. the one-liner: `seq 2000 | runjobs exec -j2 true` (no results file) against the same
#     items from a job file (true_2000.toml, results as JSON Lines): exec is a job built in
#     memory, so at most 1.05x its time (peer/runjobs >= 0.95); and against
#     `seq 2000 | parallel -j2 true`: at most 0.25x parallel's time (>= 4).
case_exec_true_2000() {
    local rj=(sh -c "seq 2000 | '$BIN' exec -j2 true")
    local job=("$BIN" "$BENCH_DIR/jobs/true_2000.toml" -o "$TMP/true.jsonl")
    run_checked "exec_true_2000 exec (check)" "${rj[@]}"
    [[ ! -s $TMP/stdout ]] || die "exec_true_2000: \`true\` printed something"
    run_checked "exec_true_2000 job file (check)" "${job[@]}"
    [[ $(wc -l <"$TMP/true.jsonl") == 2001 ]] || die "exec_true_2000: want 2001 lines in $TMP/true.jsonl"
    compare exec_true_2000_job 0.95 rj job
    if ! command -v parallel >/dev/null; then
        skip_case exec_true_2000_parallel "GNU parallel not installed (Debian package 'parallel')"
        return
    fi
    local peer=(sh -c 'seq 2000 | parallel -j2 true')
    run_checked "exec_true_2000 parallel (check)" "${peer[@]}"
    compare exec_true_2000_parallel 4 rj peer
}

# 4b. the spawn floor: 2000 processes, 2 at a time, timed in one round-robin run (every
#     command once per round, BENCH_RUNS rounds, medians): a C fork/exec loop and Rust's
#     std Command loop (bench/floor/, built here), runjobs, xargs -P2, Python's Pool(2) +
#     subprocess.run and GNU parallel -j2 (when installed). One row per peer, each with
#     peer/runjobs, and a second table of every command's time over the C loop's.
#     Goals: runjobs at most 1.1x the C loop (peer/runjobs >= 0.91) and ahead of xargs and
#     Python (>= 1). true_2000_floor runs `true ITEM`; echo_2000_floor runs `echo ITEM` with
#     stdout captured (runjobs: each item's output; the loops and Python: read from a pipe;
#     xargs and parallel: to a file).
FLOOR_TABLE=()
build_floor() { # -> $TMP/spawn_loop_c, $TMP/spawn_loop_rs; false when no C compiler
    [[ -x $TMP/spawn_loop_c && -x $TMP/spawn_loop_rs ]] && return 0
    command -v cc >/dev/null || return 1
    cc -O2 -pthread -o "$TMP/spawn_loop_c" "$BENCH_DIR/floor/spawn_loop.c" 2>>"$LOG" ||
        die "cannot build bench/floor/spawn_loop.c"
    rustc -O -o "$TMP/spawn_loop_rs" "$BENCH_DIR/floor/spawn_loop.rs" 2>>"$LOG" ||
        die "cannot build bench/floor/spawn_loop.rs"
}

# round_robin CASE LABEL... : each LABEL names an array holding a command; every command is
# run once per round for $RUNS rounds; sets MEDIAN[LABEL]
declare -A MEDIAN
round_robin() {
    local name=$1; shift
    local -A times=()
    local i label
    for ((i = 1; i <= RUNS; i++)); do
        for label in "$@"; do
            unset -n _cmd
            local -n _cmd=$label
            run_checked "$name $label #$i" "${_cmd[@]}"
            times[$label]+="$ELAPSED "
        done
    done
    for label in "$@"; do
        MEDIAN[$label]=$(printf '%s\n' ${times[$label]} | median)
        printf '### %s %s times: %s\n' "$name" "$label" "${times[$label]}" >>"$LOG"
    done
}

floor_case() { # case kind(none|capture) job check_kind
    local name=$1 kind=$2 job=$3 check_kind=$4 n=2000
    if ! build_floor; then
        skip_case "$name" "no C compiler (cc) for the C loop"
        return
    fi
    local prog=(true) out=/dev/null
    [[ $kind == capture ]] && prog=(echo)
    c_loop=("$TMP/spawn_loop_c" "$n" 2 "$kind" "${prog[@]}")
    rust_loop=("$TMP/spawn_loop_rs" "$n" 2 "$kind" "${prog[@]}")
    runjobs=("$BIN" "$job" -o "$TMP/floor.jsonl")
    python_pool2=("$PYTHON" "$BENCH_DIR/floor/pool_subprocess.py" "$n" 2 "$kind" "${prog[@]}")
    [[ $kind == capture ]] && out=$TMP/peer.txt
    xargs_p2=(sh -c "seq $n | xargs -P2 -n1 ${prog[*]} >$out")
    parallel_j2=(sh -c "seq $n | parallel -j2 ${prog[*]} >$out")
    local labels=(c_loop rust_loop runjobs xargs_p2 python_pool2) label
    command -v parallel >/dev/null && labels+=(parallel_j2)
    # warm-up and checks
    for label in "${labels[@]}"; do
        unset -n _warm
        local -n _warm=$label
        run_checked "$name $label (check)" "${_warm[@]}"
        case $label in
            runjobs) check "$name runjobs" "${CHECK[@]}" "$check_kind" "$TMP/floor.jsonl" "$n" ;;
            xargs_p2 | parallel_j2)
                [[ $kind != capture || $(wc -l <"$out") == "$n" ]] || die "$name $label: want $n lines in $out" ;;
        esac
    done
    round_robin "$name" "${labels[@]}"
    local rj=${MEDIAN[runjobs]} c=${MEDIAN[c_loop]}
    for label in "${labels[@]}"; do
        local ratio_c
        ratio_c=$(awk -v t="${MEDIAN[$label]}" -v c="$c" 'BEGIN { printf "%.2f", t / c }')
        FLOOR_TABLE+=("$name	$label	${MEDIAN[$label]}	${ratio_c}x")
        [[ $label == runjobs ]] && continue
        local ratio goal=info verdict=info
        ratio=$(awk -v r="$rj" -v p="${MEDIAN[$label]}" 'BEGIN { printf "%.2f", p / r }')
        case $label in
            c_loop) goal=0.91 ;;
            xargs_p2 | python_pool2) goal=1 ;;
        esac
        if [[ $goal != info ]]; then
            if awk -v x="$ratio" -v g="$goal" 'BEGIN { exit !(x >= g) }'; then verdict=ok; else verdict=MISSED; fi
            goal=">= ${goal}x"
        fi
        add_row "$name vs $label" "$rj" "${MEDIAN[$label]}" "${ratio}x" - "$goal" "$verdict"
    done
    rm -f "$TMP/floor.jsonl" "$TMP/peer.txt"
}

case_true_2000_floor() { floor_case true_2000_floor none "$BENCH_DIR/jobs/true_2000.toml" jsonl; }
case_echo_2000_floor() { floor_case echo_2000_floor capture "$BENCH_DIR/jobs/echo_2000.toml" jsonl-echo; }

# 5. a plain Python function over 100k items on 2 workers vs Pool(2).map + json.dump
#    (goal: at most 1.5x Pool's wall time, i.e. peer/runjobs >= 0.67).
# py_square_N: a plain Python function (`python = "fns.py:square"`) over range(N), 2
# workers, results file written, vs Pool(2).map of the same function with the results kept
# in memory only (bench/py/pool_map.py; goal: no slower, peer/runjobs >= 1) and, for
# information, vs Pool(2).map + json.dump (bench/py/pool_square.py). The job names the
# interpreter itself (`python_exe`), so a version manager's shim is not what is timed.
py_square_case() {
    local name=$1 n=$2 goal=$3
    local python job="$TMP/$name.toml"
    python=$("$PYTHON" -c 'import sys; print(sys.executable)')
    cat >"$job" <<JOB
[functions.square]
python = "$BENCH_DIR/py/fns.py:square"
python_exe = "$python"

[[task]]
function = "square"
workers = 2
inputs = { range = [0, $n] }
JOB
    local rj=("$BIN" "$job" -o "$TMP/py.json")
    local bare=("$python" "$BENCH_DIR/py/pool_map.py" "$n" 2)
    local dumped=("$python" "$BENCH_DIR/py/pool_square.py" "$n" 2 "$TMP/pool.json")
    run_checked "$name runjobs (check)" "${rj[@]}"
    check "$name runjobs" "${CHECK[@]}" json "$TMP/py.json" "$n"
    run_checked "$name Pool.map (check)" "${bare[@]}"
    run_checked "$name Pool.map + json.dump (check)" "${dumped[@]}"
    compare "$name" "$goal" rj bare
    compare "${name}_dump" info rj dumped
    rm -f "$TMP/py.json" "$TMP/pool.json"
}

case_py_square_4() { py_square_case py_square_4 4 1; }
case_py_square_100k() { py_square_case py_square_100k 100000 1; }
case_py_square_1m() { py_square_case py_square_1m 1000000 1; }

# 7. 1000 builtin items as a Slurm job array of 4 shards on the cluster this machine can
#    submit to (scripts/slurm-local.sh start), against the same job run locally; and the
#    time from submission to the first shard running (for information: Slurm's scheduling).
case_slurm_1000() {
    if ! sinfo -h -o %T 2>/dev/null | grep -Eq 'idle|mixed|allocated'; then
        skip_case slurm_1000 "no Slurm cluster up (scripts/slurm-local.sh start)"
        return
    fi
    local job="$BENCH_DIR/jobs/slurm_1000.toml"
    local rj=("$BIN" "$job" --progress never -o "$TMP/slurm.json")
    local peer=("$BIN" "$job" --executor local -o "$TMP/local.json")
    "$BIN" "$job" --progress never -o "$TMP/slurm.json" 2>"$TMP/slurm.err" ||
        die "slurm_1000 failed: $(<"$TMP/slurm.err")"
    check "slurm_1000 runjobs" "${CHECK[@]}" json "$TMP/slurm.json" 1000
    run_checked "slurm_1000 local (check)" "${peer[@]}"
    local first
    first=$(sed -n 's/.*the first shard runs \([0-9.]*\) s after submission.*/\1/p' "$TMP/slurm.err")
    compare slurm_1000 info rj peer
    add_row slurm_first_shard "${first:--}" - - - "submit to first shard running" info
}

# 6. a JSON-lines echo worker over 1M items: throughput of the protocol itself (no peer).
case_echo_worker_1m() {
    local n=1000000 out="$TMP/echo.jsonl"
    run_checked "echo_worker_1m runjobs" "$BIN" "$BENCH_DIR/jobs/echo_worker_1m.toml" -o "$out"
    [[ $(wc -l <"$out") == $((n + 1)) ]] || die "echo_worker_1m: want $((n + 1)) lines"
    local rate
    rate=$(awk -v n="$n" -v s="$ELAPSED" 'BEGIN { printf "%.0f items/s", n / s }')
    add_row echo_worker_1m "$(printf '%.4f' "$ELAPSED")" - - - "$rate" info
    rm -f "$out"
}

print_table() { # tab-separated rows on stdin, the first a header -> aligned columns
    awk -F'\t' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
          if (NF > nf) nf = NF }
        END { for (r = 1; r <= NR; r++) {
                line = ""
                for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", cell[r, i])
                print line
                if (r == 1) { line = ""; for (i = 1; i <= nf; i++) { s = sprintf("%" w[i] "s", ""); gsub(/ /, "-", s); line = line s (i < nf ? "  " : "") }; print line }
              } }'
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    printf '\nCases: %s\n' "${CASES[*]}"
}

main() {
    local filter=${1:-*}
    case $filter in
        -h | --help) usage; return 0 ;;
        --list) printf '%s\n' "${CASES[@]}"; return 0 ;;
        -*) usage >&2; return 2 ;;
    esac
    (($# <= 1)) || { usage >&2; return 2; }
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"

    local selected=() c
    for c in "${CASES[@]}"; do
        # shellcheck disable=SC2053  # glob match on purpose
        if [[ $c == $filter ]]; then selected+=("$c"); fi
    done
    if ((${#selected[@]} == 0)); then
        log "bench: no case matches '$filter'; cases: ${CASES[*]}"
        return 2
    fi

    command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
    [[ -x $TIME_BIN ]] || log "bench: $TIME_BIN not found (Debian package 'time'): timing with \$EPOCHREALTIME only; RSS cases are skipped"

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/runjobs-bench.XXXXXX")
    LOG="$TMP/bench.log"
    trap cleanup EXIT

    cd "$ROOT"
    if [[ ${BENCH_NO_BUILD:-0} != 1 && -z ${BENCH_BIN:-} ]]; then
        log "bench: cargo build --release"
        # compiler warnings go to the log, not the table
        cargo build --release --quiet 2>>"$LOG" ||
            die "cargo build --release failed (a concurrent edit? retry, or BENCH_NO_BUILD=1 to use the existing binary)"
    fi
    [[ -x $BIN ]] || die "$BIN missing; build it with cargo build --release"

    log "bench: ${selected[*]} | $RUNS runs each, median | $(nproc) CPUs | $("$PYTHON" --version 2>&1) | runjobs $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
    for c in "${selected[@]}"; do
        log "bench: running $c"
        "case_$c"
    done

    printf '\n'
    {
        printf 'case\trunjobs s\tpeer s\tpeer/runjobs\tpeak RSS\tgoal\tverdict\n'
        printf '%s\n' "${ROWS[@]}"
    } | print_table
    printf '\n(peer/runjobs > 1 means runjobs is that many times faster; medians of %s runs)\n' "$RUNS"
    if ((${#FLOOR_TABLE[@]})); then
        printf '\nSpawn floor (one round-robin run; time over the C fork/exec loop'"'"'s):\n'
        {
            printf 'case\tcommand\tmedian s\tover C loop\n'
            printf '%s\n' "${FLOOR_TABLE[@]}"
        } | print_table
    fi

    if ((MISSED)) && [[ ${BENCH_STRICT:-0} == 1 ]]; then
        log "bench: some goals were missed (BENCH_STRICT=1)"
        return 1
    fi
}

main "$@"
