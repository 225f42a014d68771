#!/usr/bin/python3
"""Keys and tokens for t/080-jwt.t, made by an independent implementation
(PyJWT and pyca/cryptography, Debian's python3-jwt and python3-cryptography)
at test time, so that no secret is ever committed.

  fixtures.py DIR           writes key files into DIR and prints every
                            token as one JSON object {name: token}
  fixtures.py DIR token EXP prints one RS256 token signed with DIR's rsa1
                            key, expiring EXP seconds from now
"""

import base64
import hmac
import hashlib
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://issuer.example"
AUDIENCE = "api"


B64 = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
       "0123456789-_")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def non_canonical(text, bits=1):
    """text with unused low bits of its last character set: a lax decoder
    reads the same bytes, a strict one refuses it (RFC 4648 3.5)."""
    unused = {2: 4, 3: 2}[len(text) % 4]
    assert 0 < bits < (1 << unused)
    v = B64.index(text[-1])
    assert v & ((1 << unused) - 1) == 0
    return text[:-1] + B64[v | bits]


def odd_json(obj):
    """obj as JSON whose length is no multiple of 3, so that its base64url
    has unused bits (a trailing space is still the same JSON)."""
    text = json.dumps(obj)
    while len(text) % 3 == 0:
        text += " "
    return text.encode()


def pem_public(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def jwk(algorithm, key, kid):
    d = json.loads(algorithm.to_jwk(key.public_key()))
    if d["kty"] == "EC":
        # PyJWT 2.6 drops a coordinate's leading zero bytes (1 key in 128);
        # RFC 7518 6.2.1.2 wants the curve's full size, as the module does
        size = (key.curve.key_size + 7) // 8
        numbers = key.public_key().public_numbers()
        d["x"] = b64(numbers.x.to_bytes(size, "big"))
        d["y"] = b64(numbers.y.to_bytes(size, "big"))
    d["kid"] = kid
    return d


def oct_jwk(secret, kid):
    return {"kty": "oct", "kid": kid, "k": b64(secret)}


def write(directory, name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(directory, name), mode) as f:
        f.write(data)


def load_private(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
         "tenant_id": "acme", "iat": now, "exp": now + 3600}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def hand_made(header, payload, sign):
    """A token PyJWT would refuse to make (none, alg confusion)."""
    signing_input = (b64(json.dumps(header).encode()) + "."
                     + b64(json.dumps(payload).encode()))
    return signing_input + "." + b64(sign(signing_input.encode()))


def make_keys(directory):
    keys = {
        "rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa_other": rsa.generate_private_key(public_exponent=65537,
                                              key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, key in keys.items():
        write(directory, name + ".key", pem_private(key))
        write(directory, name + ".pem", pem_public(key))

    hs = os.urandom(64)
    write(directory, "hs.secret", hs)

    jwks = {"keys": [
        jwk(RSAAlgorithm, keys["rsa1"], "rsa1"),
        jwk(ECAlgorithm, keys["ec256"], "ec256"),
        jwk(ECAlgorithm, keys["ec384"], "ec384"),
        jwk(OKPAlgorithm, keys["ed"], "ed"),
        oct_jwk(hs, "hs"),
        # an encryption key is skipped, not an error
        dict(jwk(RSAAlgorithm, keys["rsa_other"], "enc1"), use="enc"),
    ]}
    write(directory, "jwks.json", json.dumps(jwks, indent=1))
    write(directory, "jwks2.json", json.dumps(
        {"keys": [jwk(RSAAlgorithm, keys["rsa2"], "rsa2")]}))

    # a key pinned to one algorithm by its "alg" member
    pinned = dict(jwk(RSAAlgorithm, keys["rsa1"], "rsa1"), alg="RS512")
    write(directory, "jwks-pinned.json", json.dumps({"keys": [pinned]}))

    # files nginx -t must refuse
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    write(directory, "bad-small-rsa.pem", pem_public(small))
    write(directory, "bad-private.pem", pem_private(keys["rsa1"]))
    write(directory, "bad-syntax.json", '{"keys": [ {"kty": "RSA", ')
    write(directory, "bad-empty.json", '{"keys": []}')
    write(directory, "bad-short-hmac.json",
          json.dumps({"keys": [oct_jwk(os.urandom(16), "short")]}))
    p521 = ec.generate_private_key(ec.SECP521R1())
    write(directory, "bad-p521.json",
          json.dumps({"keys": [jwk(ECAlgorithm, p521, "p521")]}))
    write(directory, "bad-dup-kid.json", json.dumps({"keys": [
        jwk(RSAAlgorithm, keys["rsa1"], "same"),
        jwk(ECAlgorithm, keys["ec256"], "same")]}))
    write(directory, "bad-garbage.pem", "hello\n")

    # the same keys with unused low bits set in one base64url member
    for name, alg, key, member in (("n", RSAAlgorithm, keys["rsa1"], "n"),
                                   ("x", OKPAlgorithm, keys["ed"], "x"),
                                   ("y", ECAlgorithm, keys["ec256"], "y")):
        k = jwk(alg, key, "nc")
        k[member] = non_canonical(k[member])
        write(directory, "bad-nc-%s.json" % name, json.dumps({"keys": [k]}))
    k = oct_jwk(hs, "nc")
    k["k"] = non_canonical(k["k"])
    write(directory, "bad-nc-k.json", json.dumps({"keys": [k]}))
    return keys, hs


def make_tokens(keys, hs):
    now = int(time.time())
    t = {}

    def sign(alg, key, kid, **over):
        return jwt.encode(claims(**over), key, algorithm=alg,
                          headers={"kid": kid} if kid else None)

    for alg, key, kid in (("HS256", hs, "hs"), ("HS384", hs, "hs"),
                          ("HS512", hs, "hs"),
                          ("RS256", keys["rsa1"], "rsa1"),
                          ("RS384", keys["rsa1"], "rsa1"),
                          ("RS512", keys["rsa1"], "rsa1"),
                          ("ES256", keys["ec256"], "ec256"),
                          ("ES384", keys["ec384"], "ec384"),
                          ("EdDSA", keys["ed"], "ed")):
        t[alg] = sign(alg, key, kid)

    rsa1 = keys["rsa1"]
    t["no_kid"] = sign("RS256", rsa1, None)
    t["ec_no_kid"] = sign("ES256", keys["ec256"], None)
    t["wrong_key"] = sign("RS256", keys["rsa_other"], "rsa1")
    t["unknown_kid"] = sign("RS256", rsa1, "nope")
    t["ec_kid_rsa"] = sign("ES256", keys["ec256"], "rsa1")
    t["rsa2"] = sign("RS256", keys["rsa2"], "rsa2")
    t["tenant_int"] = sign("RS256", rsa1, "rsa1", tenant_id=42)
    t["no_tenant"] = sign("RS256", rsa1, "rsa1", tenant_id=None)
    t["org"] = sign("RS256", rsa1, "rsa1", org="globex", sub=None)
    t["expired"] = sign("RS256", rsa1, "rsa1", exp=now - 3600)
    t["expired_30m"] = sign("RS256", rsa1, "rsa1", exp=now - 1800)
    t["nbf_future"] = sign("RS256", rsa1, "rsa1", nbf=now + 3600)
    t["nbf_30m"] = sign("RS256", rsa1, "rsa1", nbf=now + 1800)
    t["no_exp"] = sign("RS256", rsa1, "rsa1", exp=None)
    t["bad_iss"] = sign("RS256", rsa1, "rsa1", iss="https://evil.example")
    t["no_iss"] = sign("RS256", rsa1, "rsa1", iss=None)
    t["aud_array"] = sign("RS256", rsa1, "rsa1", aud=["other", AUDIENCE])
    t["bad_aud"] = sign("RS256", rsa1, "rsa1", aud=["other", "more"])
    t["no_aud"] = sign("RS256", rsa1, "rsa1", aud=None)
    t["exp_string"] = sign("RS256", rsa1, "rsa1", exp="tomorrow")

    # the classic confusion: HS256 keyed with the RSA public key's PEM
    pem = pem_public(rsa1)
    t["alg_confusion"] = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa1"}, claims(),
        lambda m: hmac.new(pem, m, hashlib.sha256).digest())
    t["alg_confusion_no_kid"] = hand_made(
        {"alg": "HS256", "typ": "JWT"}, claims(),
        lambda m: hmac.new(pem, m, hashlib.sha256).digest())
    t["alg_none"] = hand_made({"alg": "none", "typ": "JWT"}, claims(),
                              lambda m: b"")
    t["alg_none_upper"] = hand_made({"alg": "NONE"}, claims(), lambda m: b"")
    t["crit"] = hand_made(
        {"alg": "HS256", "kid": "hs", "crit": ["exp"]}, claims(),
        lambda m: hmac.new(hs, m, hashlib.sha256).digest())

    # a valid token whose payload was swapped for another tenant's
    head, _, sig = t["RS256"].split(".")
    evil = b64(json.dumps(claims(tenant_id="globex")).encode())
    t["tampered"] = head + "." + evil + "." + sig

    # duplicated names: {"tenant_id":"acme","tenant_id":"globex"}
    body = ('{"iss":"%s","aud":"%s","exp":%d,"tenant_id":"acme",'
            '"tenant_id":"globex"}' % (ISSUER, AUDIENCE, now + 3600))
    signing_input = b64(b'{"alg":"HS256","kid":"hs"}') + "." \
        + b64(body.encode())
    t["dup_claim"] = signing_input + "." + b64(
        hmac.new(hs, signing_input.encode(), hashlib.sha256).digest())

    # what an attacker has at hand: a real token, its signature zeroed
    head, body, sig = t["RS256"].split(".")
    t["forged"] = head + "." + body + "." + b64(bytes(256))
    t["forged_hs"] = ".".join(t["HS256"].split(".")[:2]) + "." + b64(bytes(32))

    # a signature's unused low bits set: the same bytes to a lax decoder
    # (HS256's 32 bytes leave 2 such bits: 3 strings besides the real one)
    for bits in (1, 2, 3):
        head, body, sig = t["HS256"].split(".")
        t["nc_sig_hs%d" % bits] = head + "." + body + "." \
            + non_canonical(sig, bits)
    for alg in ("RS256", "ES256", "EdDSA"):
        head, body, sig = t[alg].split(".")
        t["nc_sig_" + alg] = head + "." + body + "." + non_canonical(sig)

    # the header's or the payload's unused bits set, and signed as sent
    def hs_signed(head, body):
        signing_input = head + "." + body
        return signing_input + "." + b64(
            hmac.new(hs, signing_input.encode(), hashlib.sha256).digest())

    head = b64(odd_json({"alg": "HS256", "kid": "hs"}))
    body = b64(odd_json(claims()))
    t["odd_json"] = hs_signed(head, body)
    t["nc_header"] = hs_signed(non_canonical(head), body)
    t["nc_payload"] = hs_signed(head, non_canonical(body))

    # claims of the wrong type (RFC 7519 4.1)
    for name, over in (("iss_array", {"iss": [ISSUER]}),
                       ("iss_number", {"iss": 42}),
                       ("iss_object", {"iss": {"iss": ISSUER}}),
                       ("aud_number", {"aud": 42}),
                       ("aud_mixed", {"aud": [42, AUDIENCE]}),
                       ("aud_nested", {"aud": [[AUDIENCE]]}),
                       ("aud_object", {"aud": {AUDIENCE: True}}),
                       ("aud_empty", {"aud": []}),
                       ("iat_string", {"iat": "now"}),
                       ("nbf_string", {"nbf": "now"}),
                       ("exp_bool", {"exp": True}),
                       ("exp_float", {"exp": now + 3600.5}),
                       ("tenant_array", {"tenant_id": ["acme"]}),
                       ("tenant_float", {"tenant_id": 42.0}),
                       ("tenant_bool", {"tenant_id": True}),
                       ("tenant_empty", {"tenant_id": ""}),
                       ("tenant_long", {"tenant_id": "t" * 257}),
                       ("tenant_max", {"tenant_id": "t" * 256}),
                       ("sub_int", {"sub": 7}),
                       ("sub_array", {"sub": ["alice"]}),
                       ("sub_object", {"sub": {"id": "alice"}}),
                       ("sub_long", {"sub": "u" * 257}),
                       ("sub_empty", {"sub": ""}),
                       # a control byte, which a header would carry upstream
                       ("sub_crlf", {"sub": "bob\r\nX-Admin: 1"}),
                       ("sub_tab", {"sub": "bob\tx"}),
                       ("tenant_lf", {"tenant_id": "acme\n"}),
                       ("tenant_del", {"tenant_id": "acme\u007f"}),
                       ("sub_utf8", {"sub": "b\u00f6b \u2603"})):
        t[name] = sign("RS256", rsa1, "rsa1", **over)

    t["garbage"] = "not-a-token"
    t["two_parts"] = "eyJhbGciOiJIUzI1NiJ9.e30"
    t["five_parts"] = "a.b.c.d.e"
    t["bad_base64"] = "eyJhbGciOiJIUzI1NiJ9.e30.AA*A"
    t["header_not_json"] = b64(b"hello") + ".e30." + b64(b"sig")
    t["deep_header"] = b64(b"[" * 3000 + b"]" * 3000) + ".e30.AAAA"

    # signed, so that the payload is parsed: nested deeper than jansson's
    # limit (2048)
    body = ('{"tenant_id":"acme","exp":%d,"x":%s%s}'
            % (now + 3600, "[" * 2500, "]" * 2500))
    signing_input = b64(b'{"alg":"HS256","kid":"hs"}') + "." \
        + b64(body.encode())
    t["deep_payload"] = signing_input + "." + b64(
        hmac.new(hs, signing_input.encode(), hashlib.sha256).digest())
    t["huge"] = "a" * 9000 + ".b.c"
    return t


def main():
    directory = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "token":
        key = load_private(directory, "rsa1.key")
        exp = int(time.time()) + int(sys.argv[3])
        print(jwt.encode(claims(exp=exp), key, algorithm="RS256",
                         headers={"kid": "rsa1"}))
        return
    os.makedirs(directory, exist_ok=True)
    keys, hs = make_keys(directory)
    print(json.dumps(make_tokens(keys, hs)))


if __name__ == "__main__":
    main()
