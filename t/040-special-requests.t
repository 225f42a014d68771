# vim:set ft= ts=4 sw=4 et fdm=marker:
# Exactly one record per client request, whatever path it took: internal
# redirects, error_page, named locations, auth_request, early errors
# (400, 413) and client aborts (499).

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;

    server {
        listen unix:$TEST_NGINX_HTML_DIR/backend.sock;
        obs off;
        location / { return 200 "backend\n"; }
        location /slow { echo_sleep 2; echo slow; }
        location /auth { return 204; }
    }
_EOC_

add_block_preprocessor(sub { ObsSink::preprocess(shift, $HttpConfig) });

run_tests();

__DATA__

=== TEST 1: rewrite ... last: one record, route of the final location
--- config
    location /old { rewrite ^ /api/new last; }
    location /api/ { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- request eval
["GET /old", "GET /sink/count?path=/old&wait=0.3", "GET /sink/records?path=/old"]
--- response_body_like eval
["backend", '^\{"count": 1\}$', '"route": "/api/"[\s\S]*"status": 200']



=== TEST 2: error_page to a named location keeps the failing route
--- config
    location /flaky {
        error_page 502 = @fallback;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/nobody-listens.sock;
    }
    location @fallback { return 200 "fallback\n"; }
--- request eval
["GET /flaky", "GET /sink/count?path=/flaky&wait=0.3", "GET /sink/records?path=/flaky",
 "GET /errlog"]
--- response_body_like eval
["fallback", '^\{"count": 1\}$', '"route": "/flaky"[\s\S]*"status": 200[\s\S]*"status": 502',
 'nobody-listens.sock failed']



=== TEST 3: error_page to a URI with its own status
--- config
    location /missing {
        error_page 404 /errors/404.html;
        return 404;
    }
    location /errors/ { return 404 "custom not found\n"; }
--- request eval
["GET /missing", "GET /sink/count?path=/missing&wait=0.3", "GET /sink/records?path=/missing"]
--- error_code eval
[404, 200, 200]
--- response_body_like eval
["custom not found", '^\{"count": 1\}$', '"route": "/missing"[\s\S]*"status": 404']



=== TEST 4: try_files falling back to a named location keeps the route
--- config
    location /files/ {
        try_files $uri @backend;
    }
    location @backend { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- request eval
["GET /files/none.txt", "GET /sink/count?path=/files/none.txt&wait=0.3",
 "GET /sink/records?path=/files/none.txt"]
--- response_body_like eval
["backend", '^\{"count": 1\}$', '"route": "/files/"']



=== TEST 5: auth_request: one record for the client request, none for the check
--- config
    location /secured {
        auth_request /check;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock;
    }
    location = /check {
        internal;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock:/auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
--- request eval
["GET /secured", "GET /sink/count?path=/secured&wait=0.3", "GET /sink/count?path=/check&wait=0"]
--- response_body eval
["backend\n", "{\"count\": 1}\n", "{\"count\": 0}\n"]



=== TEST 6: auth_request denial is recorded with the client's status
--- config
    location /denied {
        auth_request /deny;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock;
    }
    location = /deny { internal; return 403; }
--- request eval
["GET /denied", "GET /sink/records?path=/denied"]
--- error_code eval
[403, 200]
--- response_body_like eval
["403", '^\{[^\n]*"status": 403[^\n]*\}\n\z']



=== TEST 7: 413 before any phase handler ran
--- config
    location /upload {
        client_max_body_size 10;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock;
    }
--- request eval
["POST /upload\n" . ("x" x 100), "GET /sink/records?path=/upload"]
--- error_code eval
[413, 200]
--- response_body_like eval
["413", '"route": "/upload"[\s\S]*"status": 413']



=== TEST 8: 400 for a malformed request line
--- config
--- raw_request eval
"GET /bad\x01path HTTP/1.1\r\nHost: localhost\r\n\r\n"
--- error_code: 400
--- response_body_like: 400
--- wait: 0.3



=== TEST 8b: the 400's record
--- config
--- request
GET /sink/records?status=400&min=1&wait=5
--- response_body_like eval
'"route": "unmatched"[\s\S]*"status": 400'



=== TEST 9: a client that gives up is recorded as 499
--- config
    location /slow { proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock; }
--- request
GET /slow
--- timeout: 0.3
--- abort
--- wait: 0.3
--- ignore_response



=== TEST 10: ... and its record arrived
--- config
--- request
GET /sink/records?path=/slow
--- response_body_like chomp
"route": "/slow"[\s\S]*"status": 499



=== TEST 11: error_page keeps the failing location's service, for the request and its upstream
--- config
    location /dead-page {
        obs_service_name dead-svc;
        error_page 502 /50x.html;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/nobody-listens.sock;
    }
    location /dead-named {
        obs_service_name dead-svc;
        error_page 502 = @fallback;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/nobody-listens.sock;
    }
    location = /50x.html { obs_service_name pages; return 200 "sorry\n"; }
    location @fallback { obs_service_name fallback-svc; return 200 "fallback\n"; }
--- request eval
["GET /dead-page", "GET /sink/records?path=/dead-page&min=1&wait=2",
 "GET /dead-named", "GET /sink/records?path=/dead-named&min=1&wait=2"]
--- error_code eval
[502, 200, 200, 200]
--- response_body_like eval
["sorry", '^(?![\s\S]*"service": "(?:pages|unknown)")[\s\S]*"service": "dead-svc"',
 "fallback",
 '^(?![\s\S]*"service": "(?:fallback-svc|unknown)")[\s\S]*"service": "dead-svc"']



=== TEST 12: an attempt that got no response says why (error 1 refused, 2 timeout); a response has none
--- config
    location /refused {
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/nobody-listens.sock;
    }
    location /late {
        proxy_read_timeout 200ms;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock:/slow;
    }
    location /fine {
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock:/;
    }
--- request eval
["GET /refused", "GET /sink/records?path=/refused&min=1&wait=2",
 "GET /late", "GET /sink/records?path=/late&min=1&wait=2",
 "GET /fine", "GET /sink/records?path=/fine&min=1&wait=2"]
--- error_code eval
[502, 200, 504, 200, 200, 200]
--- response_body_like eval
["", '"upstreams": \[\{[^\]]*"error": 1[^\]]*"status": 502',
 "", '"upstreams": \[\{[^\]]*"error": 2[^\]]*"status": 504',
 "backend", '"upstreams": \[\{(?![^\]]*"error")[^\]]*"status": 200']



=== TEST 13: the largest possible record (every text at its limit, 8 attempts) fits its size bound
--- http_config eval
$::HttpConfig . $ObsSink::LargestHttp
--- config
    location /big/ {
        obs_route "$uri$uri";
        proxy_pass http://eight_dead;
    }
--- more_headers eval
$ObsSink::LargestHeaders
--- request eval
["GET /big/" . ("p" x 1100), "GET /sink/records?min=1&wait=2&status=502"]
--- error_code eval
[502, 200]
--- response_body_like eval
["", '"upstreams": \[(?:\{[^}]*"error": 1[^}]*\}, ){7}\{[^}]*"error": 1[^}]*\}\]']
--- no_error_log
[alert]
