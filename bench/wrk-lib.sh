# Sourced by the benchmark scripts.
#
#   run_wrk [wrk options] URL     32 connections for $duration; prints "req/s p50_ms p99_ms errors"
# wrk's summary as: requests/s, p50 ms, p99 ms, errors (non-2xx + socket errors).
summary() {
  python3 -c '
import re, sys
t = sys.stdin.read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
    v = float(m.group(1)); return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
errs = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", t))
errs += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
p50, p99 = ms("50%"), ms("99%")
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {errs}")'
}
run_wrk() { wrk -t2 -c32 -d"$duration" --latency "$@" | summary; }
