# Mean SM clock / power per variant timing window: python3 clock.py int8_run1_smi.csv int8_run1_trace.log
# (smi: nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw -lms 100; trace: the harness's stderr)
import sys, csv, datetime, collections
smi_path, trace_path = sys.argv[1], sys.argv[2]
samples = []
for row in csv.reader(open(smi_path)):
    if len(row) < 3: continue
    try:
        ts = datetime.datetime.strptime(row[0].strip(), '%Y/%m/%d %H:%M:%S.%f').replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
        mhz = float(row[1].split()[0]); w = float(row[2].split()[0])
    except Exception: continue
    samples.append((ts, mhz, w))
print('samples', len(samples), 'median MHz', sorted(s[1] for s in samples)[len(samples)//2] if samples else None)
agg = collections.defaultdict(list)
for line in open(trace_path):
    p = line.split()
    if len(p) != 5 or p[0] != 'TRACE': continue
    name, tag, t0, t1 = p[1], p[2], float(p[3]), float(p[4])
    M = tag.split(':')[-1]; pat = tag.split(':')[1]
    for s in samples:
        if t0 <= s[0] <= t1:
            agg[(name, pat, M)].append(s)
            agg[(name, 'all', 'all')].append(s)
for k in sorted(agg):
    v = agg[k]
    print('%-22s %-6s %-6s n=%4d  MHz mean %6.0f min %5.0f  W mean %5.0f' % (k[0], k[1], k[2], len(v), sum(x[1] for x in v)/len(v), min(x[1] for x in v), sum(x[2] for x in v)/len(v)))
