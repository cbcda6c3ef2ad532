# The slowest windows of the same trace (see windows.py): p50/p90/p99 over the windows after the first tenth, then for the
# N slowest every gap above 0.4 ms and the point it preceded.  python3 slowest.py /tmp/ftrace 8
import sys,glob
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
    wins.append((ev[j][0]-ev[i][0],i,j))
wins=wins[len(wins)//10:]
wins.sort()
print('n',len(wins),'p50 %.0f p90 %.0f p99 %.0f'%(wins[len(wins)//2][0]/1e3,wins[int(len(wins)*.9)][0]/1e3,wins[int(len(wins)*.99)][0]/1e3))
for d,i,j in wins[-int(sys.argv[2]):]:
    t0=ev[i][0]; prev=t0
    print('--- %.0f us'%(d/1e3))
    big=[(t-p, n) for (p,_),(t,n) in zip(ev[i:j],ev[i+1:j+1])]
    for (t,n),(p,_) in zip(ev[i+1:j+1],ev[i:j]):
        if t-p>400000: print('   gap %6.0f before %s'%((t-p)/1e3,n))
