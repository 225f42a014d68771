# vim:set ft= ts=4 sw=4 et fdm=marker:
# Hostile raw requests: HTTP/0.9, absurd and duplicated trace headers, bad
# versions and truncated requests.  Each must be answered (or refused) by a
# live worker, never crash it; the instrumented locations proxy and serve
# files, the two paths that take trace context.

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    obs_tenant $http_x_tenant_id;
    obs_route_auto on;
    client_header_timeout 1s;

    server {
        listen unix:$TEST_NGINX_HTML_DIR/backend.sock;
        obs off;
        location / {
            return 200 "tp=$http_traceparent ts=$http_tracestate\n";
        }
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $HttpConfig)
        unless defined $block->http_config;
});

run_tests();

__DATA__

=== TEST 1: HTTP/0.9 to a proxied location: answered, a fresh traceparent goes upstream
--- config
    location /x { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /x\r\n"
--- http09
--- response_body_like
^tp=00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3] ts=$
--- no_error_log
[alert]
[crit]



=== TEST 2: HTTP/0.9 to a location that serves files
--- config
    location /f { alias $TEST_NGINX_HTML_DIR; }
--- raw_request eval
"GET /f/index.html\r\n"
--- http09
--- response_body_unlike
^$
--- no_error_log
[alert]
[crit]



=== TEST 3: HTTP/0.9 to a location that answers at once
--- config
    location /r { return 200 "r\n"; }
--- raw_request eval
"GET /r\r\n"
--- http09
--- response_body
r
--- no_error_log
[alert]



=== TEST 4: a hundred traceparent and tracestate headers: one fresh traceparent upstream
--- config
    location /dup { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /dup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
. ("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n" x 100)
. ("tracestate: a=b\r\n" x 100) . "\r\n"
--- response_body_like
^tp=00-(?!0af7651916cd43dd8448eb211c80319c)[0-9a-f]{32}-[0-9a-f]{16}-0[0-3] ts=$
--- no_error_log
[alert]



=== TEST 5: a tracestate as long as a header line may be
--- config
    location /long { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
. "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
. "tracestate: " . CORE::join(",", map { "k$_=" . ("v" x 200) } 1 .. 30) . "\r\n\r\n"
--- response_body_like
^tp=00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01 ts=k1=v{200}(,k\d+=v{200})?$
--- no_error_log
[alert]



=== TEST 6: control bytes and non-ASCII in trace headers start a new trace
--- config
    location /ctl { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /ctl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
. "traceparent: 00-0af7651916cd43dd8448eb211c8031\x01\xff-b7ad6b7169203331-01\r\n"
. "tracestate: a=\x7f\x80\r\nX-Tenant-ID: \xc3\xa9t\xe9\r\n\r\n"
--- response_body_like
^tp=00-(?!0af7651916cd43dd)[0-9a-f]{32}-[0-9a-f]{16}-0[0-3] ts=$
--- no_error_log
[alert]



=== TEST 7: an HTTP version nginx does not speak
--- config
    location /v { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /v HTTP/9.9\r\nHost: x\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n"
--- error_code: 505
--- no_error_log
[alert]



=== TEST 8: a malformed request line
--- config
    location /m { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /m HTTP/1.1 extra\r\nHost: x\r\n\r\n"
--- error_code: 400
--- no_error_log
[alert]



=== TEST 9: a header line longer than nginx's buffers
--- config
    location /big { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /big HTTP/1.1\r\nHost: x\r\ntracestate: " . ("a" x 20000) . "\r\n\r\n"
--- error_code: 400
--- no_error_log
[alert]



=== TEST 10: a request cut off inside a trace header times out cleanly
--- config
    location /cut { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /cut HTTP/1.1\r\nHost: x\r\ntraceparent: 00-0af7651916cd43dd84"
--- ignore_response
--- timeout: 3
--- wait: 1.5
--- error_log
client timed out
--- no_error_log
[alert]



=== TEST 11: a header with an empty name and a header with no colon
--- config
    location /odd { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /odd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n: nothing\r\nnocolon\r\n\r\n"
--- error_code: 400
--- no_error_log
[alert]



=== TEST 12: HTTP/1.0, absolute URI, a path of dots
--- config
    location /a/ { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET http://evil.example/a/./b/%2e%2e/c?x=1 HTTP/1.0\r\n\r\n"
--- response_body_like
^tp=00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3] ts=$
--- no_error_log
[alert]



=== TEST 13: a path that climbs above the root
--- config
    location /a/ { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- raw_request eval
"GET /a/../../etc/passwd HTTP/1.0\r\n\r\n"
--- error_code: 400
--- no_error_log
[alert]
