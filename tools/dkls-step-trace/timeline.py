# Per-round timeline of sequential DKLs23 three-round signatures from the step trace (step-trace.patch, not in the product):
#   git apply tools/dkls-step-trace/step-trace.patch   (against 8351cfb, the digest named in round two; a measurement build only, never committed)
#   On a node, round three's "handler" mark after "r3compute" is the wait for its dkls.sign-share record; the coordinator's "audit" mark (after "deliver") the wait for its dkls.sign entry.
#   ./run.sh build, then CONCLAVE_STEP_TRACE=/tmp/ctrace ./conclave bench --cluster ... ; python3 timeline.py /tmp/ctrace
# Medians over the signatures whose coordinator span overlaps no other (the bench's sequential phase); ms.
import sys,glob,re,statistics as st
from collections import defaultdict
def ts(s):
    h,m,x=s.split(':'); return int(h)*3600+int(m)*60+float(x)
lines=[]
for f in glob.glob(sys.argv[1]+'/*.log'):
    for l in open(f):
        p=l.split()
        t=ts(p[0]); lines.append((t,p[1:]))
lines.sort()
coords=[]
for t,p in lines:
    if p[0]=='coord':
        d=dict(kv.split('=') for kv in p[2:])
        tot=float(d['total'])/1000
        coords.append((t-tot,t,d))
iso=[]
for i,(s,e,d) in enumerate(coords):
    ok=all(e2<=s or s2>=e for j,(s2,e2,_) in enumerate(coords) if j!=i and abs(s2-s)<1)
    if ok: iso.append((s,e,d))
print('isolated coord sign3:',len(iso),'of',len(coords))
def med(xs): return st.median(xs) if xs else float('nan')
keys=['round1','deliver','round2','audit','round3','combine','total']
for k in keys+["auditwait"]:
    if k in iso[0][2]: print(f'  coord {k}: {med([float(d[k]) for _,_,d in iso]):.3f}')
# node and client lines inside isolated windows
agg=defaultdict(lambda: defaultdict(list))
import bisect
starts=[s for s,_,_ in iso]
for t,p in lines:
    if p[0]=='coord': continue
    i=bisect.bisect_right(starts,t)-1
    if i<0 or t>iso[i][1]+0.0005: continue
    who=p[0]; kind=p[1]
    rest=[kv for kv in p[2:] if '=' in kv]
    name=(who[:6] if who.startswith('client') else who, kind)
    for kv in rest:
        k,v=kv.split('=')
        try: agg[name][k].append(float(v))
        except: pass
for name in sorted(agg):
    print(name, ' '.join(f'{k}={med(v):.3f}' for k,v in agg[name].items() if k!='relayed'), f'n={len(next(iter(agg[name].values())))}')
