# Medians of the segments of lone FROST signatures in the trace (see windows.py): server request work, the server's
# audit commit, the sends, each signing node's work, aggregation and the answer.  python3 segments.py /tmp/ftrace
import sys, glob, statistics as st
from collections import defaultdict
ev = []
for f in glob.glob(sys.argv[1] + '/*.log'):
    for l in open(f):
        t, n = l.split(); ev.append((int(t), n))
ev.sort()
sends = [i for i, (t, n) in enumerate(ev) if n == 's.c.send']
seg = defaultdict(list)
total = []
for i in sends:
    j = i + 1
    while j < len(ev) and ev[j][1] not in ('s.c.recv', 's.c.send'): j += 1
    if j >= len(ev) or ev[j][1] != 's.c.recv': continue
    w = ev[i:j + 1]
    names = [n for _, n in w]
    if names.count('s.coord.agg') != 1: continue
    first = {}; last = {}
    for t, n in w:
        first.setdefault(n, t); last[n] = t
    need = ['s.http.in', 's.mw.keyread', 's.r.policy', 's.coord.picked', 's.aw.begin', 's.tx.committed', 's.coord.audited', 's.conn.sent', 's.conn.resumed', 's.coord.shares', 's.coord.agg', 's.http.out']
    if any(k not in first for k in need): continue
    total.append((w[-1][0] - w[0][0]) / 1e3)
    d = lambda a, b: (b - a) / 1e3
    seg['client -> server (HTTP request in)'].append(d(w[0][0], first['s.http.in']))
    seg['auth, request hash, key read'].append(d(first['s.http.in'], first['s.mw.keyread']))
    seg['route, input checks, policy decision'].append(d(first['s.mw.keyread'], first['s.r.policy']))
    seg['coordinator: quorum, pooled commitments'].append(d(first['s.r.policy'], first['s.coord.picked']))
    seg['audit commit: queue to writer'].append(d(first['s.coord.picked'], first['s.aw.begin']))
    seg['audit commit: transaction (rows, signed head, fsync)'].append(d(first['s.aw.begin'], first['s.tx.committed']))
    seg['audit commit: back to the request'].append(d(first['s.tx.committed'], first['s.coord.audited']))
    seg['both sign steps built and written (one after the other)'].append(d(first['s.coord.audited'], last['s.conn.sent']))
    nodes = sorted({n.split('.')[0] for n in names if n.startswith('n')})
    for nd in nodes:
        if all(f'{nd}.{k}' in first for k in ('frame.in', 'verified', 'leased', 'computed', 'aw.wake', 'tx.committed', 'handled', 'frame.written')):
            seg['node: frame in -> envelope verified'].append(d(first[f'{nd}.frame.in'], first[f'{nd}.verified']))
            seg['node: key lease'].append(d(first[f'{nd}.verified'], first[f'{nd}.leased']))
            seg['node: share computed (record commits meanwhile)'].append(d(first[f'{nd}.leased'], first[f'{nd}.computed']))
            seg['node: record commit (queue, transaction, fsync)'].append(d(first[f'{nd}.leased'], first[f'{nd}.tx.committed']))
            seg['node: leased -> reply written'].append(d(first[f'{nd}.leased'], first[f'{nd}.frame.written']))
            seg['node: frame in -> reply written'].append(d(first[f'{nd}.frame.in'], first[f'{nd}.frame.written']))
    seg['last reply read -> shares collected'].append(d(last['s.conn.resumed'], first['s.coord.shares']) if 's.coord.shares' in first else 0)
    seg['aggregate and verify'].append(d(first['s.coord.shares'], first['s.coord.agg']) if 's.coord.shares' in first else 0)
    seg['answer built and written'].append(d(first['s.coord.agg'], first['s.http.out']))
    seg['server -> client (HTTP response read)'].append(d(first['s.http.out'], w[-1][0]))
skip = len(total) // 10
print(f'lone signatures: {len(total)} (first tenth dropped); total p50 {st.median(total[skip:]):.0f} us')
for k, v in seg.items():
    v = v[skip:] if len(v) > skip else v
    print(f'  {k:58s} p50 {st.median(v):7.0f} us')
