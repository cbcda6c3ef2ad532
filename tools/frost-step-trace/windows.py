# Timelines of lone FROST signatures through REST, from the temporary trace (step-trace.patch, never in the product):
#   git apply tools/frost-step-trace/step-trace.patch   (against 62c258c; a measurement build only, never committed)
#   build (./run.sh build), then CONCLAVE_TRACE=/tmp/ftrace ./conclave bench --cluster --cluster-shape 2-of-3 --shapes 2-of-3 \
#     --schemes frost-secp256k1 --duration 5;  python3 windows.py /tmp/ftrace 3
# Each process appends "monotonic-ns point" lines (s.* = server and the bench's HTTP client, nN.* = node N); a window is
# one request from the client's send to its receipt with nothing else in flight. Prints N windows from the middle of the
# run: time since the send, time since the previous point, point. (docs/PERFORMANCE.md "Where a lone FROST request's time goes")
import sys,glob,statistics as st
from collections import defaultdict
ev=[]
for f in glob.glob(sys.argv[1]+'/*.log'):
    for l in open(f):
        t,n=l.split(); ev.append((int(t),n))
ev.sort()
sends=[i for i,(t,n) in enumerate(ev) if n=='s.c.send']
wins=[]
for i in sends:
    j=i+1
    while j<len(ev) and ev[j][1] not in ('s.c.recv','s.c.send'): j+=1
    if j>=len(ev) or ev[j][1]!='s.c.recv': continue
    names=[n for _,n in ev[i:j+1]]
    if names.count('s.coord.agg')!=1: continue
    wins.append((i,j))
print(len(wins))
k=int(sys.argv[2])
for i,j in wins[len(wins)//2:len(wins)//2+k]:
    t0=ev[i][0]; prev=t0
    print('---')
    for t,n in ev[i:j+1]:
        print('%7.0f %+6.0f %s'%((t-t0)/1e3,(t-prev)/1e3,n)); prev=t
