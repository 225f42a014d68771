# vim:set ft= ts=4 sw=4 et fdm=marker:
# obs_audit: the audit events records carry (issue 22).  Records are decoded
# by Google's Python protobuf runtime (t/helpers/obs_sink.py); the client's
# pseudonym is compared with Python's hmac, tokens come from PyJWT
# (t/jwt/fixtures.py).  Nothing secret may ever be in a record: the query
# string, the Authorization header, cookies, the token.

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

use File::Temp qw(tempdir);
use JSON::PP ();

our ($Dir, %T, $Pseudonym);

BEGIN {
    $Dir = tempdir("obs-audit-XXXXXX", TMPDIR => 1, CLEANUP => 1);

    my $json = `/usr/bin/python3 t/jwt/fixtures.py $Dir`;
    die "t/jwt/fixtures.py failed" if $? != 0;
    %T = %{ JSON::PP::decode_json($json) };

    open my $fh, '>', "$Dir/client.key" or die $!;
    print $fh "audit-client-pseudonym-key-0123\n";
    close $fh;

    # the client's address under that key, by Python's hmac
    $Pseudonym = `/usr/bin/python3 -c 'import hashlib, hmac, sys; print(hmac.new(open(sys.argv[1], "rb").readline().rstrip(b"\\n"), b"127.0.0.1", hashlib.sha256).hexdigest())' $Dir/client.key`;
    die "python3 hmac failed" if $? != 0;
    chomp $Pseudonym;

    $ENV{TEST_NGINX_AUDIT} = $Dir;
}

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    large_client_header_buffers 4 32k;
    obs_jwt_keys $TEST_NGINX_AUDIT/jwks.json;
    obs_jwt_issuer https://issuer.example;
    obs_jwt_audience api;
_EOC_

add_block_preprocessor(sub { ObsSink::preprocess(shift, $HttpConfig) });

run_tests();

__DATA__

=== TEST 1: start from an empty sink
--- config
--- request
GET /sink/reset
--- response_body_like: reset



=== TEST 2: an audited request: its event, numbered from 1, "unverified" without a token, the client's address, nginx's request id; decision "allowed" (0, left out of the protobuf JSON)
--- config
    location /export {
        obs_audit on;
        obs_route /export;
        return 200 "ok\n";
    }
--- request eval
["GET /export", "GET /sink/records?path=/export"]
--- response_body_like eval
["ok", '"audit": \[\{"client": "127.0.0.1", "scope": 1, "sequence": "1", "tenant": "unverified", "user": "unverified"\}\].*"requestId": "[0-9a-f]{32}"']
--- no_error_log
[alert]



=== TEST 3: requests outside an obs_audit scope have no event; the worker numbers its events 1, 2, 3 whatever else it records (they travel in batches of their own)
--- config
    location /plain { return 200 "ok\n"; }
    location /export { obs_audit on; return 200 "ok\n"; }
--- request eval
["GET /export", "GET /plain", "GET /export", "GET /plain", "GET /export",
 "GET /sink/records?min=5"]
--- response_body_like eval
["ok", "ok", "ok", "ok", "ok",
 '\A(?=(?:[^\n]*\n){5}\z)(?=[^\n]*"sequence": "1"[^\n]*"path": "/export")'
 . '(?=[\s\S]*"sequence": "2"[^\n]*"path": "/export")'
 . '(?=[\s\S]*"sequence": "3"[^\n]*"path": "/export")'
 . '(?=[\s\S]*\n\{"clientAddress"[^\n]*"path": "/plain"[\s\S]*\n\{"clientAddress"[^\n]*"path": "/plain")']



=== TEST 4: hmac=: the client is its HMAC-SHA256 pseudonym (Python's hmac gives the same), never the address
--- config
    location /export {
        obs_audit on hmac=$TEST_NGINX_AUDIT/client.key;
        return 200 "ok\n";
    }
--- request eval
["GET /export", "GET /sink/records?path=/export"]
--- response_body_like eval
["ok", '"audit": \[\{"client": "' . $::Pseudonym . '"']
--- response_body_unlike eval
["^\$", '"audit": \[\{"client": "127']



=== TEST 5: what the gateway refused itself is "denied" with a reason: deny (403 forbidden, 12), return 401 (unauthenticated, 11), 429 (rate_limited, 13), another code (refused, 14); an error page keeps the decision
--- config
    location /deny { obs_audit on; deny all; }
    location /denied-page { obs_audit on; deny all; error_page 403 /sorry; }
    location = /sorry { return 200 "sorry\n"; }
    location /unauth { obs_audit on; return 401; }
    location /slow { obs_audit on; return 429; }
    location /gone { obs_audit on; return 410; }
--- request eval
["GET /deny", "GET /sink/records?path=/deny",
 "GET /denied-page", "GET /sink/records?path=/denied-page",
 "GET /unauth", "GET /sink/records?path=/unauth",
 "GET /slow", "GET /sink/records?path=/slow",
 "GET /gone", "GET /sink/records?path=/gone"]
--- error_code eval
[403, 200, 403, 200, 401, 200, 429, 200, 410, 200]
--- response_body_like eval
[".*", '"decision": 12,', "sorry", '"decision": 12,', ".*", '"decision": 11,', ".*", '"decision": 13,', ".*", '"decision": 14,']



=== TEST 6: an answer a content handler gave (here 403 from the backend's own logic) was allowed through: the decision is "allowed"
--- config
    location /backend-403 {
        obs_audit on;
        echo_status 403;
        echo "not yours";
    }
--- request eval
["GET /backend-403", "GET /sink/records?path=/backend-403"]
--- error_code eval
[403, 200]
--- response_body_like eval
["not yours", '"audit": \[\{"client": "127.0.0.1", "scope": 1, "sequence"']
--- response_body_unlike eval
["^\$", '"decision"']



=== TEST 7: a verified token's user and tenant; its verdict (valid: 1)
--- config
    location /models {
        obs_audit on;
        obs_jwt on;
        return 204;
    }
--- more_headers eval
"Authorization: Bearer $::T{RS256}"
--- request eval
["DELETE /models/7", "GET /sink/records?path=/models/7"]
--- error_code eval
[204, 200]
--- response_body_like eval
["", '"audit": \[\{"client": "127.0.0.1", "jwtStatus": 1, "scope": 1, "sequence": "\d+", "tenant": "acme", "user": "alice"\}\].*"method": "DELETE"']



=== TEST 8: obs_jwt require refuses an expired token: audited without obs_audit (scope 2), with what the token claims of itself (kid, alg, iss) and never the token
--- config
    location /admin {
        obs_jwt require;
        echo "in";
    }
--- more_headers eval
"Authorization: Bearer $::T{expired}"
--- request eval
["GET /admin/users", "GET /sink/records?path=/admin/users"]
--- error_code eval
[401, 200]
--- response_body_like eval
["", '"audit": \[\{"client": "127.0.0.1", "decision": 6, "jwtAlg": "RS256", "jwtIssuer": "https://issuer.example", "jwtKid": "rsa1", "jwtStatus": 7, "scope": 2, "sequence": "\d+", "tenant": "unverified", "user": "unverified"\}\]']
--- response_body_unlike eval
["^\$", (split /\./, $::T{expired})[2]]



=== TEST 9: a refusal for a missing token (decision 1) in an obs_audit scope keeps scope 1
--- config
    location /admin {
        obs_audit on;
        obs_jwt require;
        echo "in";
    }
--- request eval
["GET /admin/x", "GET /sink/records?path=/admin/x"]
--- error_code eval
[401, 200]
--- response_body_like eval
["", '"audit": \[\{"client": "127.0.0.1", "decision": 1, "jwtStatus": 2, "scope": 1,']



=== TEST 10: nothing secret in a record, ever: not the query string, the Authorization header, a cookie, a body
--- config
    location /export {
        obs_audit on;
        obs_jwt on;
        return 200 "ok\n";
    }
--- more_headers eval
"Authorization: Bearer $::T{RS256}\nCookie: session=cookie-secret-4711\nX-Api-Key: header-secret-0815"
--- request eval
["POST /export?password=query-secret-2342\nbody-secret-1234", "GET /sink/records?path=/export"]
--- response_body_like eval
["ok", '"user": "alice"']
--- response_body_unlike eval
["^\$", "query-secret|cookie-secret|header-secret|body-secret|password|Bearer|"
        . (split /\./, $::T{RS256})[2]]



=== TEST 11: batch headers name the configuration: its generation, the master's pid, the digest of the files, nginx's and the module's versions
--- config
    location /export { obs_audit on; return 200 "ok\n"; }
--- request eval
["GET /export", "GET /sink/headers?wait=0.3"]
--- response_body_like eval
["ok", '"configGeneration": "\d+", "configLoadedUnixNano": "\d+", "configSha256": "[0-9a-f]{64}".*"masterPid": \d+.*"moduleVersion": "[^"]+".*"serverVersion": "1\.\d+\.\d+"']



=== TEST 12: the reserve: while the sidecar is away, access records fill the buffer and are shed, audit events are kept and all arrive when it is back
--- http_config
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK buffer=16k flush=100ms;
--- config
    location /plain { return 200 "ok\n"; }
    location /aud { obs_audit on; return 200 "ok\n"; }
--- request eval
["GET /sink/reset", "GET /sink/pause",
 (map { ("GET /plain?" . ("p" x 10) . "$_") x 8, "GET /aud?n=$_" } 1 .. 20),
 "GET /sink/resume", "GET /sink/records?path=/aud&min=20&wait=5",
 "GET /sink/stats?wait=1"]
--- response_body_like eval
["reset", "paused", ("ok") x 180, "paused", '\A(?:[^\n]*"audit": \[\{[^\n]*\n){20}\z', '"audit_dropped": 0, "dropped": [1-9]']



=== TEST 13: nginx -t: obs_audit without obs_sidecar
--- http_config
--- config
    location /a { obs_audit on; }
--- must_die
--- error_log
"obs_audit" directive in



=== TEST 14: nginx -t: ... the message says why
--- http_config
--- config
    obs_audit on;
--- must_die
--- error_log
needs "obs_sidecar": audit events go to the sidecar



=== TEST 15: nginx -t: an invalid value
--- config
    obs_audit yes;
--- must_die
--- error_log
invalid value "yes" in "obs_audit" directive, it must be "on" or "off"



=== TEST 16: nginx -t: hmac= after off
--- config
    obs_audit off hmac=$TEST_NGINX_AUDIT/client.key;
--- must_die
--- error_log
invalid parameter "hmac=



=== TEST 17: nginx -t: a key file that is missing is named with the directive
--- config
    obs_audit on hmac=$TEST_NGINX_AUDIT/no-such.key;
--- must_die
--- error_log
in "obs_audit": open() failed



=== TEST 18: nginx -t: an audited scope that is "obs off" would lose its events
--- config
    location /area/ {
        obs_audit on;
        location /area/healthz { obs off; return 200; }
    }
--- must_die
--- error_log
"obs_audit on" and "obs off" in the same scope (location "/area/healthz")



=== TEST 19: nginx -t: twice at one level
--- config
    obs_audit on;
    obs_audit off;
--- must_die
--- error_log
"obs_audit" directive is duplicate



=== TEST 20: "obs_audit off" where "obs off" is fine, and it inherits
--- config
    location /area/ {
        obs_audit on;
        location /area/healthz { obs off; obs_audit off; return 200 "up\n"; }
        location /area/in { return 200 "in\n"; }
    }
--- request eval
["GET /area/healthz", "GET /area/in", "GET /sink/records?path=/area/in"]
--- response_body_like eval
["up", "in", '"audit": \[\{"client"']
