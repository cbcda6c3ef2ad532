#!/usr/bin/env python3
"""One-off: writes the deterministic subsets of the ML-DSA / SLH-DSA vectors that tests/Conclave.PostQuantum.Tests use.

Run from the repository root with the shared vector store as argument:
    python3 tools/vectors/subset-pq-vectors.py /work/shared/vectors
The tests never run this script and never read the shared store; the rules are repeated in tests/vectors/SOURCES.md.
"""
import json, os, sys
from collections import defaultdict

src, dst = sys.argv[1], os.path.join('tests', 'vectors')

def load(rel):
    with open(os.path.join(src, rel)) as f:
        return json.load(f)

def save(rel, obj):
    path = os.path.join(dst, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))
        f.write('\n')

def pure_external(g):
    return g.get('signatureInterface') == 'external' and g.get('preHash') == 'pure'

# ML-DSA keyGen: every test; the expanded 'sk' kept for the first 5 tests of each group only.
kg = load('ml-dsa/acvp/ML-DSA-keyGen-FIPS204/internalProjection.json')
for g in kg['testGroups']:
    for i, t in enumerate(g['tests']):
        t.pop('deferred', None)
        if i >= 5:
            t.pop('sk', None)
save('ml-dsa/acvp/ML-DSA-keyGen-FIPS204/internalProjection.json', kg)

# ML-DSA sigGen: pure external groups only (the interface Conclave exposes), first 6 tests of each.
prompt = load('ml-dsa/acvp/ML-DSA-sigGen-FIPS204/prompt.json')
expected = load('ml-dsa/acvp/ML-DSA-sigGen-FIPS204/expectedResults.json')
keep = {}
prompt['testGroups'] = [g for g in prompt['testGroups'] if pure_external(g)]
for g in prompt['testGroups']:
    g['tests'] = g['tests'][:6]
    keep[g['tgId']] = {t['tcId'] for t in g['tests']}
expected['testGroups'] = [g for g in expected['testGroups'] if g['tgId'] in keep]
for g in expected['testGroups']:
    g['tests'] = [t for t in g['tests'] if t['tcId'] in keep[g['tgId']]]
save('ml-dsa/acvp/ML-DSA-sigGen-FIPS204/prompt.json', prompt)
save('ml-dsa/acvp/ML-DSA-sigGen-FIPS204/expectedResults.json', expected)

# ML-DSA sigVer: pure external groups, every test, 'sk' dropped (verification needs pk only).
sv = load('ml-dsa/acvp/ML-DSA-sigVer-FIPS204/internalProjection.json')
sv['testGroups'] = [g for g in sv['testGroups'] if pure_external(g)]
for g in sv['testGroups']:
    for t in g['tests']:
        t.pop('sk', None)
        t.pop('deferred', None)
save('ml-dsa/acvp/ML-DSA-sigVer-FIPS204/internalProjection.json', sv)

# Wycheproof ML-DSA verify: every group; within a group the first 2 tests of each (result, flags) class.
for lvl in ('44', '65', '87'):
    rel = f'ml-dsa/wycheproof/mldsa_{lvl}_verify_test.json'
    w = load(rel)
    for g in w['testGroups']:
        seen = defaultdict(int)
        kept = []
        for t in g['tests']:
            key = (t['result'], tuple(t['flags']))
            if seen[key] < 2:
                kept.append(t)
            seen[key] += 1
        g['tests'] = kept
    w['numberOfTests'] = sum(len(g['tests']) for g in w['testGroups'])
    save(rel, w)

# SLH-DSA keyGen: the whole internalProjection (12 sets x 10 tests, 75 KB).
sk = load('slh-dsa/acvp/SLH-DSA-keyGen-FIPS205/internalProjection.json')
save('slh-dsa/acvp/SLH-DSA-keyGen-FIPS205/internalProjection.json', sk)

# SLH-DSA sigVer (Aug 2024 revision, internal interface): every group; within a group the first test of each
# 'reason'; 'sk' dropped.
sv = load('slh-dsa/acvp-2024-08-internal/SLH-DSA-sigVer-FIPS205/internalProjection.json')
for g in sv['testGroups']:
    seen = set()
    kept = []
    for t in g['tests']:
        if t['reason'] not in seen:
            seen.add(t['reason'])
            t.pop('sk', None)
            t.pop('deferred', None)
            kept.append(t)
    g['tests'] = kept
save('slh-dsa/acvp-2024-08-internal/SLH-DSA-sigVer-FIPS205/internalProjection.json', sv)
