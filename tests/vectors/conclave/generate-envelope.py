# Generates tests/vectors/conclave/envelope.json (run from the repository root: python3 tests/vectors/conclave/generate-envelope.py > tests/vectors/conclave/envelope.json).
import json, struct, hashlib
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305, AESGCM
def rotl(v,c): return ((v<<c)&0xffffffff)|(v>>(32-c))
def qr(s,a,b,c,d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]=rotl(s[d]^s[a],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]=rotl(s[b]^s[c],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]=rotl(s[d]^s[a],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]=rotl(s[b]^s[c],7)
def hchacha20(key, n16):
    # draft-irtf-cfrg-xchacha-03 section 2.2
    s=[0x61707865,0x3320646e,0x79622d32,0x6b206574]+list(struct.unpack('<8I',key))+list(struct.unpack('<4I',n16))
    for _ in range(10):
        qr(s,0,4,8,12); qr(s,1,5,9,13); qr(s,2,6,10,14); qr(s,3,7,11,15)
        qr(s,0,5,10,15); qr(s,1,6,11,12); qr(s,2,7,8,13); qr(s,3,4,9,14)
    return struct.pack('<8I', *(s[0:4]+s[12:16]))
def xchacha_encrypt(key, nonce, pt, ad):
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])).encrypt(b'\0'*4+nonce[16:], pt, ad)
# self-check against draft-irtf-cfrg-xchacha A.3 / Wycheproof tcId 1
d=json.load(open('tests/vectors/wycheproof/xchacha20_poly1305_test.json')); t=d['testGroups'][0]['tests'][0]
assert xchacha_encrypt(bytes.fromhex(t['key']),bytes.fromhex(t['iv']),bytes.fromhex(t['msg']),bytes.fromhex(t['aad'])).hex()==t['ct']+t['tag']
# HChaCha20 test vector of draft-irtf-cfrg-xchacha-03 section 2.2.1
assert hchacha20(bytes(range(32)), bytes.fromhex('000000090000004a0000000031415927')).hex()=='82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc'
def envelope(alg, key, nonce, pt, ctx):
    header=b'CNV'+bytes([1,alg])
    ad=header+nonce+struct.pack('>I',len(ctx))+ctx
    body = xchacha_encrypt(key,nonce,pt,ad) if alg==1 else AESGCM(key).encrypt(nonce,pt,ad)
    return header+nonce+body
H=lambda s: hashlib.sha256(s.encode()).digest()
rows=[]
specs=[(1,b'\x2a'*32,b'key:42:v1'),(1,bytes(range(64)),b''),(1,b'\x00',b'conclave/node-store/share'),(2,b'\x2a'*32,b'key:42:v1'),(2,bytes(range(100)),b'')]
for i,(alg,pt,ctx) in enumerate(specs):
    key=H(f'Conclave envelope vector key {i}')
    nonce=H(f'Conclave envelope vector nonce {i}')[:24 if alg==1 else 12]
    rows.append({'algorithm':'XChaCha20Poly1305' if alg==1 else 'Aes256Gcm','key':key.hex(),'nonce':nonce.hex(),'plaintext':pt.hex(),'context':ctx.hex(),'envelope':envelope(alg,key,nonce,pt,ctx).hex()})
print(json.dumps({'description':"Conclave envelope (src/Conclave.Crypto/Aead/Envelope.cs): \"CNV\" || version 1 || algorithm (1 = XChaCha20-Poly1305, 2 = AES-256-GCM) || nonce || ciphertext || tag, the AEAD's associated data being header || nonce || u32be(len(context)) || context. Computed independently in Python: pyca/cryptography ChaCha20Poly1305 and AESGCM plus HChaCha20 written from draft-irtf-cfrg-xchacha-03 section 2.2 (self-checked on that draft's HChaCha20 vector and on its A.3 AEAD vector). key = SHA-256(\"Conclave envelope vector key <row>\"), nonce = first 24 (XChaCha) or 12 (AES-GCM) bytes of SHA-256(\"Conclave envelope vector nonce <row>\"). Hex without 0x.",'vectors':rows}, indent=2))
