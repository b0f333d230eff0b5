# Four-projection sums per variant set, mean [min-max] over runs:
#   python3 sums.py i8 int8_run1_time.log int8_run2_time.log int8_run3_time.log
#   python3 sums.py f8 fp8_run1_time.log fp8_run2_time.log
import re, sys, collections
def parse(f):
    data=collections.defaultdict(lambda: collections.defaultdict(dict)); dense=collections.defaultdict(dict)
    for line in open(f):
        p=line.split()
        if len(p)>4 and p[1]=='dense' and 'cublaslt' in p:
            lt=float(p[5]); tw=[float(x) for x in re.findall(r'dense:\S+\s+([\d.]+)\(',line)]
            dense[int(p[2])][p[0]]=(lt if lt>0 else 1e30,min(tw))
        elif len(p)>4 and p[1].startswith('2_') and not p[4].startswith('->'):
            for nm,val in re.findall(r'(\S+) ([\d.-]+)\(', ' '.join(p[4:])):
                data[(p[1],int(p[2]))][p[0]][nm]=float(val) if float(val)>0 else 1e30
    return data,dense
I8={'lib':['coop128x256c2','ping128x128c1'],'old':['coop128x256c2','coop256x128c2','ping128x128c2','ping128x128c1'],
    'lib-ping+pingk256':['coop128x256c2','ping128x128k256c1'],
    '+coopc1x2':['coop128x256c2','coop128x256c1x2','ping128x128k256c1'],
    'c1x2+pingk256':['coop128x256c1x2','ping128x128k256c1'],
    'all':None}
F8={'lib':['f8:coop128x256c2','f8:ping128x128c1'],
    'lib-ping+pingk256':['f8:coop128x256c2','f8:ping128x128k256c1'],
    '+coopc1x2':['f8:coop128x256c2','f8:coop128x256c1x2','f8:ping128x128k256c1'],
    'c1x2+pingk256':['f8:coop128x256c1x2','f8:ping128x128k256c1'],'all':None}
sets = F8 if sys.argv[1]=='f8' else I8
runs=[parse(f) for f in sys.argv[2:]]
acc=collections.defaultdict(list)
for ri,(data,dense) in enumerate(runs):
    for key in sorted(data):
        pat,M=key
        db=sum(min(dense[M][s]) for s in dense[M]); tw=sum(dense[M][s][1] for s in dense[M])
        acc[key+('dense_best',)].append(db); acc[key+('twin',)].append(tw)
        for k,idx in sets.items():
            v=sum(min(t for nm,t in data[key][sh].items() if idx is None or nm in idx) for sh in data[key])
            acc[key+(k,)].append(v)
        # per variant sums
        for nm in data[key][next(iter(data[key]))]:
            acc[key+('v:'+nm,)].append(sum(data[key][sh][nm] for sh in data[key]))
keys=sorted({k[:2] for k in acc})
cols=['twin','dense_best']+list(sets)
print('%-5s %6s'%('pat','M'),' '.join('%18s'%c for c in cols))
for k in keys:
    row=[]
    for c in cols:
        v=acc[k+(c,)]; row.append('%7.1f[%5.1f-%5.1f]'%(sum(v)/len(v),min(v),max(v)) if len(v)>1 else '%7.1f'%v[0])
    print('%-5s %6d'%k,' '.join('%18s'%r for r in row))
print('speedups (mean of runs): set vs lib, dense_best/set')
for k in keys:
    lib=acc[k+('lib',)]; db=acc[k+('dense_best',)]
    s=[]
    for c in sets:
        v=acc[k+(c,)]
        s.append('%s %s/%s' % (c, '/'.join('%.3f'%(l/x) for l,x in zip(lib,v)), '%.3f'%(sum(d/x for d,x in zip(db,v))/len(v))))
    print('%-5s %6d  '%k+'  |  '.join(s))
print('per-variant sums (mean)')
for k in keys:
    print('%-5s %6d '%k+' '.join('%s %.0f'%(c[0][2:],sum(acc[k+c])/len(acc[k+c])) for c in [(x,) for x in sorted({kk[2] for kk in acc if kk[:2]==k and kk[2].startswith('v:')})]))
