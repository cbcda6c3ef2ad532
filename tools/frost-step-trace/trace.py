# Lone FROST signatures through REST, from the temporary trace (step-trace.patch, never in the product):
#   git apply tools/frost-step-trace/step-trace.patch   (against 62c258c; a measurement build only, never committed)
#   build (./run.sh build), then CONCLAVE_TRACE=/tmp/ftrace ./conclave bench --cluster --cluster-shape 2-of-3 --shapes 2-of-3 \
#     --schemes frost-secp256k1 --duration 5
#   python3 trace.py segments /tmp/ftrace      medians of the segments (server work, commits, sends, each node, answer)
#   python3 trace.py windows /tmp/ftrace 3     N windows from the middle of the run, point by point
#   python3 trace.py slowest /tmp/ftrace 8     p50/p90/p99, and for the N slowest every gap above 0.4 ms
# Each process appends "monotonic-ns point" lines (s.* = server and the bench's HTTP client, nN.* = node N); a window is
# one request from the client's send to its receipt with nothing else in flight. (docs/PERFORMANCE.md "Where a lone
# FROST request's time and CPU go")
import sys, glob, statistics as st
from collections import defaultdict


def load(folder):
    ev = []
    for f in glob.glob(folder + '/*.log'):
        for line in open(f):
            t, n = line.split()
            ev.append((int(t), n))
    ev.sort()
    return ev


def lone_windows(ev):
    """(start index, end index) of every request with exactly one aggregation inside and no other request in flight."""
    out = []
    for i in (k for k, (_, n) in enumerate(ev) if n == 's.c.send'):
        j = i + 1
        while j < len(ev) and ev[j][1] not in ('s.c.recv', 's.c.send'):
            j += 1
        if j < len(ev) and ev[j][1] == 's.c.recv' and [n for _, n in ev[i:j + 1]].count('s.coord.agg') == 1:
            out.append((i, j))
    return out


def windows(ev, count):
    wins = lone_windows(ev)
    print(len(wins))
    for i, j in wins[len(wins) // 2:len(wins) // 2 + count]:
        t0 = prev = ev[i][0]
        print('---')
        for t, n in ev[i:j + 1]:
            print('%7.0f %+6.0f %s' % ((t - t0) / 1e3, (t - prev) / 1e3, n))
            prev = t


def slowest(ev, count):
    wins = sorted((ev[j][0] - ev[i][0], i, j) for i, j in lone_windows(ev)[len(lone_windows(ev)) // 10:])
    q = lambda f: wins[min(len(wins) - 1, int(len(wins) * f))][0] / 1e3
    print('n', len(wins), 'p50 %.0f p90 %.0f p99 %.0f' % (q(.5), q(.9), q(.99)))
    for d, i, j in wins[-count:]:
        print('--- %.0f us' % (d / 1e3))
        for (t, n), (p, _) in zip(ev[i + 1:j + 1], ev[i:j]):
            if t - p > 400000:
                print('   gap %6.0f before %s' % ((t - p) / 1e3, n))


def segments(ev):
    seg = defaultdict(list)
    total = []
    for i, j in lone_windows(ev):
        w = ev[i:j + 1]
        names = [n for _, n in w]
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


if __name__ == '__main__':
    mode, folder = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    {'segments': lambda: segments(load(folder)), 'windows': lambda: windows(load(folder), n), 'slowest': lambda: slowest(load(folder), n)}[mode]()
