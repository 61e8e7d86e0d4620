# 24 h metric query latency: pre-fill 24 h of raw points (10 s apart) for
# 400 series through SQLite, then time GET /v1/metrics/query over HTTP.
import sqlite3, subprocess, time, os, sys, http.client, tempfile, json
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/superserver")
d = tempfile.mkdtemp(prefix="/tmp/qbench.")
data = d + "/data"
port = 17391
cfg = d + "/cfg.toml"
open(cfg, "w").write("[metrics]\ninterval_seconds = 10\n[discovery]\nenabled = false\n")
def start():
    p = subprocess.Popen([BIN, "serve", "--config", cfg, "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--pool-size", "0"], stdout=open(d + "/log", "a"), stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); c.getresponse().read(); return p
        except Exception: time.sleep(0.1)
    p.kill(); sys.exit("server did not start")
p = start(); p.terminate(); p.wait()
db = sqlite3.connect(data + "/superserver.db")
now = int(time.time() * 1000); t0 = now - 24 * 3600 * 1000
S, N = 400, 8640
db.execute("BEGIN")
for s in range(S):
    db.execute("INSERT INTO metric_series (id, name, tenant_id, last_t, last_value) VALUES (?, ?, NULL, ?, 1.0)", (100000 + s, f"container:c{s}/memory.bytes", now))
    db.executemany("INSERT INTO metric_points VALUES (?, 0, ?, ?, ?, ?)", ((100000 + s, t0 + i * 10000, float(i), float(i), float(i)) for i in range(N)))
db.commit(); db.close()
size = os.path.getsize(data + "/superserver.db")
p = start()
try:
    key = open(data + "/admin.key").read().strip()
    c = http.client.HTTPConnection("127.0.0.1", port)
    def q(path):
        t = time.perf_counter(); c.request("GET", path, headers={"authorization": "Bearer " + key}); r = c.getresponse(); body = r.read(); return time.perf_counter() - t, r.status, body
    for name, extra in [("all 8640 raw points", "&step=10s"), ("default step, 1440 points", "")]:
        lat = []
        for i in range(220):
            s = i % S
            dt, st, body = q(f"/v1/metrics/query?series=container:c{s}/memory.bytes&from={t0}&to={now+1}{extra}")
            assert st == 200, body
            if i >= 20: lat.append(dt * 1000)
        lat.sort()
        npts = len(json.loads(body)["points"])
        print(f"24 h query, {name}: p50 {lat[len(lat)//2]:.2f} ms, p99 {lat[int(len(lat)*0.99)]:.2f} ms, points returned {npts}")
    print(f"store: {S} series x {N} raw points, database {size/1e6:.0f} MB")
finally:
    p.terminate(); p.wait()
    subprocess.run(["rm", "-rf", d])
