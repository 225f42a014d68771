# vim:set ft= ts=4 sw=4 et fdm=marker:
# What the module sends: records decoded by an independent protobuf runtime
# (Google's Python protobuf, from record.proto) in t/helpers/obs_sink.py.

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    obs_service_name backend-api;
    obs_tenant $http_x_tenant_id;

    upstream backend {
        server unix:$TEST_NGINX_HTML_DIR/backend.sock;
    }

    server {
        listen unix:$TEST_NGINX_HTML_DIR/backend.sock;
        obs off;
        location / { return 200 "hello\n"; }
        location /api/broken { return 503 "down\n"; }
    }
_EOC_

add_block_preprocessor(sub { ObsSink::preprocess(shift, $HttpConfig) });

run_tests();

__DATA__

=== TEST 1: a proxied request: every field of the record
--- config
    location /api/ {
        obs_route_auto on;
        proxy_pass http://backend;
    }
--- more_headers
X-Tenant-ID: acme
X-Request-ID: req-42
User-Agent: obs-test/1.0
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
tracestate: vendor=abc
--- request eval
["GET /api/users/42/orders?token=s3cr3t&x=1", "GET /sink/records?path=/api/users/42/orders"]
--- response_body_like eval
["hello", CORE::join('', map { "(?=[\\s\\S]*$_)" }
    '"method": "GET"',
    '"route": "/api/users/\\{id\\}/orders"',
    '"path": "/api/users/42/orders"',
    '"status": 200',
    '"tenant": "acme"',
    '"service": "backend-api"',
    '"requestId": "req-42"',
    '"userAgent": "obs-test/1.0"',
    '"traceId": "12345678901234567890123456789012"',
    '"parentSpanId": "1234567890123456"',
    '"spanId": "[0-9a-f]{16}"',
    '"traceFlags": 1',
    '"tracestate": "vendor=abc"',
    '"clientAddress": "127.0.0.1"',
    '"scheme": "http"',
    '"serverAddress": "localhost"',
    '"serverPort": ' . ($ENV{TEST_NGINX_SERVER_PORT} || 1984),
    '"protocol": "HTTP/1.1"',
    '"upstreamName": "backend"',
    '"address": "unix:[^"]*backend.sock"',
    '"requestBytes": "[1-9]\\d*"',
    '"responseBytes": "[1-9]\\d*"',
    '"responseBodyBytes": "6"',
    '"startTimeUnixNano": "1\\d{18}"',
)]
--- response_body_unlike eval
["^\$", "s3cr3t|token"]



=== TEST 2: the upstream attempt carries the parent id the backend saw
--- config
    location /api/ {
        proxy_set_header X-Seen $obs_traceparent;
        proxy_pass http://backend;
    }
--- request eval
["GET /api/a", "GET /sink/records?path=/api/a"]
--- response_body_like eval
["hello", '"spanId": "([0-9a-f]{16})"[\s\S]*"upstreams": \[\{[^\]]*"spanId": "\1"']



=== TEST 3: tenant values are validated; a client's value equal to a reserved label is invalid
--- config
    location /t {
        obs_tenant $arg_tenant;
        return 200 "$obs_tenant\n";
    }
--- request eval
["GET /t?tenant=tenant_001.eu-west:prod", "GET /t?tenant=bad%20tenant!",
 "GET /t?tenant=" . ("a" x 65), "GET /t",
 "GET /t?tenant=none", "GET /t?tenant=invalid", "GET /t?tenant=__overflow__"]
--- response_body eval
["tenant_001.eu-west:prod\n", "invalid\n", "invalid\n", "none\n",
 "invalid\n", "invalid\n", "invalid\n"]



=== TEST 4: the route is the location's name by default (a regex location's: the URI normalised like obs_route_auto), or obs_route
--- config
    location /plain { return 200 "$obs_route\n"; }
    location /templated {
        obs_route "/templated/$arg_kind";
        return 200 "$obs_route\n";
    }
    location ~ ^/regex/(\d+)$ { return 200 "$obs_route\n"; }
    location /auto {
        obs_route_auto on;
        return 200 "$obs_route\n";
    }
--- request eval
["GET /plain/x/1", "GET /templated?kind=books", "GET /regex/12",
 "GET /auto/550e8400-e29b-41d4-a716-446655440000/deadbeefdeadbeef01/v2/a1b2c3d4e5f6g7h8i9j0k1/x?y=1"]
--- response_body eval
["/plain\n", "/templated/books\n", "/regex/{id}\n",
 "/auto/{id}/{id}/v2/{id}/x\n"]



=== TEST 5: error statuses are recorded as the client saw them
--- config
    location /api/ { proxy_pass http://backend; }
--- request eval
["GET /api/broken", "GET /sink/records?path=/api/broken"]
--- error_code eval
[503, 200]
--- response_body_like eval
["down", '"route": "/api/"[\s\S]*"status": 503[\s\S]*"upstreams": \[\{[^\]]*"status": 503']



=== TEST 6: obs off: no record
--- config
    location /quiet { obs off; return 200 "ok\n"; }
--- request eval
["GET /quiet", "GET /sink/count?path=/quiet&wait=0.3"]
--- response_body eval
["ok\n", "{\"count\": 0}\n"]



=== TEST 7: each datagram starts with a batch header
--- config
    location /t { return 200 "ok\n"; }
--- request eval
["GET /sink/headers", "GET /t", "GET /sink/headers?wait=0.3"]
--- response_body_like eval
[".*", "ok", '"host": "[^"]+"[\s\S]*"pid": \d+[\s\S]*"recordsTotal": "1"[\s\S]*"schemaVersion": 2[\s\S]*"workerStartUnixNano": "\d+"']



=== TEST 8: sampling shows in the record flags
--- config
    location /unsampled { obs_trace_sample 0; return 200 "ok\n"; }
--- request eval
["GET /unsampled", "GET /sink/records?path=/unsampled"]
--- response_body_like eval
["ok", '"traceFlags": 2']



=== TEST 9: sidecar gone: records wait, overflow is dropped and counted, nothing else is lost
--- http_config eval
$::HttpConfig =~ s/flush=50ms/buffer=4k flush=50ms/r
--- timeout: 30
--- config
    location /api/ { proxy_pass http://backend; }
--- request eval
["GET /sink/reset", "GET /sink/pause",
 (map { "GET /api/n$_" } 1 .. 100),
 "GET /sink/resume", "GET /api/last", "GET /sink/stats?wait=25&expect=101",
 "GET /errlog"]
--- response_body_like eval
["reset", "paused", (map { "hello" } 1 .. 100), "false", "hello",
 '"dropped": [1-9]\d*, "received": [1-9]\d*, "sum": 101',
 'obs: cannot send records to "unix:']



=== TEST 10: batches seal by size: many large records all arrive, none dropped
--- config
    location /api/ { proxy_pass http://backend; }
--- more_headers eval
"User-Agent: " . ("a" x 480)
--- request eval
["GET /sink/reset", (map { "GET /api/large/$_" } 1 .. 400),
 "GET /sink/stats?wait=10&expect=400"]
--- response_body_like eval
["reset", (map { "hello" } 1 .. 400),
 '"dropped": 0, "received": 400, "sum": 400']



=== TEST 11: batches seal at their record limit: 600 small records all arrive
--- config
    location /api/ { proxy_pass http://backend; }
--- request eval
["GET /sink/reset", (map { "GET /api/s$_" } 1 .. 600),
 "GET /sink/stats?wait=10&expect=600", "GET /sink/headers?wait=0"]
--- response_body_like eval
["reset", (map { "hello" } 1 .. 600),
 '"dropped": 0, "received": 600, "sum": 600',
 '"recordsTotal"[\s\S]*"recordsTotal"']



=== TEST 12: microsecond timings: request and upstream attempt durations are not whole milliseconds
--- config
    location /api/ { proxy_pass http://backend; }
--- request eval
["GET /sink/reset", (map { "GET /api/us" } 1 .. 5),
 "GET /sink/records?path=/api/us&min=5&wait=5"]
--- response_body_like eval
my $not_ms = '"(?:\d*(?:[1-9]\d\d|\d[1-9]\d|\d\d[1-9])|[1-9]\d?)"';
["reset", (map { "hello" } 1 .. 5), CORE::join('', map { "(?=[\\s\\S]*$_)" }
    '"durationUs": ' . $not_ms,
    '"responseTimeUs": ' . $not_ms,
    '"startTimeUnixNano": "\d+(?!000000")\d{6}"')]



=== TEST 13: without X-Request-ID the record carries nginx's $request_id where the request has one
--- config
    location /rid { return 200 "$request_id\n"; }
--- request eval
["GET /rid", "GET /sink/records?path=/rid&min=1&wait=5"]
--- response_body_like eval
['^[0-9a-f]{32}$', '"requestId": "[0-9a-f]{32}"']



=== TEST 14: with neither X-Request-ID nor any use of $request_id the record has no request id
--- config
    location /norid { return 200 "ok\n"; }
--- request eval
["GET /norid", "GET /sink/records?path=/norid&min=1&wait=5"]
--- response_body_like eval
["ok", '"path": "/norid"']
--- response_body_unlike eval
["requestId", '"requestId"']



=== TEST 15: the largest record nginx can make arrives whole: eight attempts, every text at its limit
The bound of a record (proto/obs/v1/columns.def, checked at compile time
against the largest datagram) must never be short: the batch would be cut
or the module would log that it packed over its bound.
--- http_config eval
my $dead = CORE::join("\n", map {
    "server unix:\$TEST_NGINX_HTML_DIR/" . ("d" x 40) . "$_.sock;" } 1 .. 9);
$::HttpConfig . <<"_EOC_";
    upstream @{["u" x 300]} {
        $dead
    }
_EOC_
--- config eval
"location /p {
    obs_route \"/p/" . ("r" x 300) . "\";
    obs_service_name " . ("s" x 300) . ";
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 0;
    proxy_pass http://" . ("u" x 300) . ";
}"
--- more_headers eval
"User-Agent: " . ("a" x 600) . "
X-Request-ID: " . ("i" x 200) . "
X-Tenant-ID: " . ("t" x 64) . "
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
tracestate: " . CORE::join(",", map { sprintf("k%02d=%s", $_, "v" x 11) } 1 .. 32)
--- request eval
[("MKCOLLECTION" . ("X" x 300)) . " /p" . ("p" x 1100) . "?q=1",
 "GET /sink/records?min=1&wait=5&status=502", "GET /errlog"]
--- response_body_like eval
[qr/Bad Gateway/, CORE::join('', map { "(?=[\\s\\S]*$_)" }
    '"method": "MKCOLLECTIONX{244}"',
    '"route": "/p/r{253}"',
    '"path": "/p{1023}"',
    '"userAgent": "a{512}"',
    '"requestId": "i{128}"',
    '"tenant": "t{64}"',
    '"service": "s{256}"',
    '"upstreamName": "u{256}"',
    '"tracestate": "k01=v{11}(?:,k\d\d=v{11}){31}"',
    '"upstreams": \[(?:\{[^{}]*"address": "unix:[^"]*d{40}\d\.sock"[^{}]*\},? ?){8}\]'),
 qr/^(?![\s\S]*over its bound)/]
--- error_code eval
[502, 200, 200]



=== TEST 16: the record says which of its labels a request made (Record.from_request: framing.h's route 1, service 2, tenant 4)
--- config
    location = /fr/conf { obs_tenant acme; return 200 "ok\n"; }
    location /fr/auto { obs_route_auto on; obs_tenant acme; return 200 "ok\n"; }
    location ~ ^/fr/regex/ { obs_tenant acme; return 200 "ok\n"; }
    location /fr/var {
        obs_route "/fr/var/$arg_kind";
        obs_tenant acme;
        return 200 "ok\n";
    }
    location /fr/tpl {
        obs_route "/fr/tpl/{id}";
        obs_tenant acme;
        return 200 "ok\n";
    }
    location /fr/svc {
        obs_service_name $host;
        obs_tenant acme;
        return 200 "ok\n";
    }
    location /fr/hdr { return 200 "ok\n"; }
    location /fr/jwt { obs_tenant $obs_jwt_tenant; return 200 "ok\n"; }
    location /fr/all {
        obs_route_auto on;
        obs_service_name "svc-$arg_s";
        return 200 "ok\n";
    }
--- more_headers
X-Tenant-ID: t1
--- request eval
[map { my ($p) = split /\?/;
       ("GET $_", "GET /sink/records?min=1&wait=5&path=$p") }
 "/fr/conf", "/fr/auto/12", "/fr/regex/12", "/fr/var?kind=b", "/fr/tpl/7",
 "/fr/svc", "/fr/hdr", "/fr/jwt", "/fr/all/9?s=x"]
--- response_body_like eval
my $all = sub { CORE::join('', map { "(?=[\\s\\S]*$_)" } @_) };
my $none = '(?![\s\S]*fromRequest)';
[map { ("ok", $_) }
 $none . $all->('"route": "/fr/conf"', '"tenant": "acme"'),
 $all->('"route": "/fr/auto/\{id\}"', '"fromRequest": 1\b'),
 $all->('"route": "/fr/regex/\{id\}"', '"fromRequest": 1\b'),
 $all->('"route": "/fr/var/b"', '"fromRequest": 1\b'),
 $none . $all->('"route": "/fr/tpl/\{id\}"'),
 $all->('"service": "localhost"', '"fromRequest": 2\b'),
 $all->('"tenant": "t1"', '"fromRequest": 4\b'),
 $none . $all->('"tenant": "unverified"'),
 $all->('"tenant": "t1"', '"service": "svc-x"', '"route": "/fr/all/\{id\}"',
        '"fromRequest": 7\b')]



=== TEST 17: obs_tenant's header is found under each spelling nginx's $http_x_tenant_id reads, whatever other headers come (the module passes over headers by nginx's hash of their names)
--- config
    underscores_in_headers on;
    location /sp/ { proxy_pass http://backend; }
--- more_headers
User-Agent: obs-test/1.0
Accept: */*
X-Tenant_iD: mixed
X-Forwarded-For: 192.0.2.1
--- request eval
["GET /sp/a", "GET /sink/records?path=/sp/a"]
--- response_body_like eval
["hello", '"tenant": "mixed"']



=== TEST 18: ... and with every '-' written as '_'
--- config
    underscores_in_headers on;
    location /sp/ { proxy_pass http://backend; }
--- more_headers
X_TENANT_ID: underscored
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- request eval
["GET /sp/b", "GET /sink/records?path=/sp/b"]
--- response_body_like eval
["hello", '"tenant": "underscored"[\s\S]*"traceId": "12345678901234567890123456789012"|"traceId": "12345678901234567890123456789012"[\s\S]*"tenant": "underscored"']



=== TEST 19: proxy_pass to an address: the upstream is named by it, port and all
--- config
    location /ip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back/; }
    location /back/ { obs off; return 200 "hello\n"; }
--- request eval
["GET /ip/a", "GET /sink/records?path=/ip/a"]
--- response_body_like eval
["hello", '"upstreamName": "127\.0\.0\.1:' . ($ENV{TEST_NGINX_SERVER_PORT} || 1984) . '"']
