"""Hostile SQL, sent to kho over HTTP and to DuckDB in process, in the same run.

For each statement: how long until the answer, what the answer was, and the peak memory it
cost (kho: the server's peak RSS over the request, after resetting the peak; DuckDB: the peak
RSS of a fresh process that ran only that statement, stopped at 60 s). DuckDB has no limit on
expression depth or on the size of a value, and takes as much memory as the machine has; kho
refuses before the work. Both read the same
75-row table (the demo's communes of Sơn La, `x` in DuckDB).

    python3 bench/hostile.py http://127.0.0.1:8080 <kho server pid>
"""

import json
import os
import subprocess
import threading
import sys
import time
import urllib.error
import urllib.request

TABLE = '"dan-so-dien-tich-xa"'


def chain(term, op, n):
    return op.join([term] * n)


# (name, kho statement, DuckDB statement)
CASES = [
    ("1+1+… 300 terms", f"SELECT {chain('1', '+', 300)}", None),
    ("1+1+… 30,000 terms", f"SELECT {chain('1', '+', 30000)}", None),
    ("OR chain, 1,500 terms", f"SELECT 1 WHERE {chain('1=1', ' OR ', 1500)}", None),
    ("UNION ALL × 2,000", chain("SELECT 1", " UNION ALL ", 2000), None),
    ("repeat('x', 1e9)", "SELECT length(repeat('x', 1000000000))", None),
    ("repeat('x', 2e9)", "SELECT length(repeat('x', 2000000000))", None),
    ("lpad to 2e9", "SELECT length(lpad('', 2000000000, 'x'))", None),
    (
        "doubling through CTEs",
        "WITH a AS (SELECT repeat('x', 4000000) s), b AS (SELECT s || s || s || s AS s FROM a) "
        "SELECT length(b.s || b.s || b.s) FROM b",
        None,
    ),
    (
        "string_agg of 1 MB × 5,625 rows",
        f"SELECT length(string_agg(repeat('x', 1000000), ',')) FROM {TABLE} a, {TABLE} b",
        "SELECT length(string_agg(repeat('x', 1000000), ',')) FROM x a, x b",
    ),
    (
        "approx_percentile_cont, 1e10 centroids",
        f"SELECT approx_percentile_cont(dan_so, 0.5, 10000000000) FROM {TABLE}",
        "SELECT reservoir_quantile(dan_so, 0.5, 10000000000) FROM x",
    ),
    ("integer overflow", "SELECT -(-9223372036854775807-1)", None),
]


def kho(base, pid, sql):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS of the server
    req = urllib.request.Request(
        f"{base}/api/v1/sql", data=json.dumps({"sql": sql}).encode(), headers={"Content-Type": "application/json"}
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            outcome = f"{r.status}"
    except urllib.error.HTTPError as e:
        outcome = f"{e.code} {json.loads(e.read() or b'{}').get('code', '')}"
    except Exception as e:  # the server went away
        outcome = f"no answer ({type(e).__name__})"
    took = time.monotonic() - start
    alive = os.path.exists(f"/proc/{pid}")
    peak = 0
    if alive:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) // 1024
    return outcome if alive else "SERVER DIED", took, peak


DUCK = """
import duckdb, sys
c = duckdb.connect()
# Its progress bar would otherwise be printed among the answers.
c.execute("SET enable_progress_bar = false")
c.execute("CREATE TABLE x AS SELECT range AS dan_so FROM range(75)")
try:
    c.execute(sys.argv[1]).fetchall()
    print("ok")
except Exception as e:
    print(type(e).__name__)
"""


def duck(sql):
    start = time.monotonic()
    p = subprocess.Popen([sys.executable, "-c", DUCK, sql], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timer = threading.Timer(60, p.kill)
    timer.start()
    out = p.stdout.read()
    # Reaped here, with this one process's own peak memory.
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    fired = not timer.is_alive()
    timer.cancel()
    took = time.monotonic() - start
    if fired:
        outcome = "stopped at 60 s"
    elif os.WIFSIGNALED(status):
        outcome = f"killed by signal {os.WTERMSIG(status)}"
    else:
        outcome = out.decode().strip() or f"exit {p.returncode}"
    return outcome, took, usage.ru_maxrss // 1024


def main():
    base, pid = sys.argv[1], int(sys.argv[2])
    print(f"{'statement':40} | {'kho answer':22} {'s':>6} {'peak MB':>8} | {'DuckDB':24} {'s':>6} {'peak MB':>8}")
    kho_total = duck_total = 0.0
    for name, sql, duck_sql in CASES:
        k = kho(base, pid, sql)
        # Each DuckDB run is a fresh process, so that one statement's memory is its own.
        d = duck(duck_sql or sql)
        kho_total += k[1]
        duck_total += d[1]
        print(f"{name:40} | {k[0]:22} {k[1]:6.2f} {k[2]:8} | {d[0]:24} {d[1]:6.2f} {d[2]:8}")
    print(f"total time: kho {kho_total:.1f} s, DuckDB {duck_total:.1f} s (ratio kho/DuckDB {kho_total / duck_total:.2f})")


if __name__ == "__main__":
    main()
