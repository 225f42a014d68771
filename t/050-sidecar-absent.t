# vim:set ft= ts=4 sw=4 et fdm=marker:
# The proxy never suffers from the sidecar: absent, or unreachable over UDP,
# requests are served as usual and the problem is logged once, not per
# request.  Directives that only shape records, with no obs_sidecar at all,
# are a warning of nginx -t, not an error.

use lib 't/helpers';
use ObsErrlog;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

# Error log checks that span a whole request list read the log through
# /errlog (error_log sections are checked per request).
add_block_preprocessor(\&ObsErrlog::add);

run_tests();

__DATA__

=== TEST 1: unix socket that does not exist
--- http_config
    obs_sidecar unix:/nonexistent-dir/obs.sock buffer=4k flush=50ms;
--- config
    location /t { return 200 "ok\n"; }
--- request eval
[(map { "GET /t" } 1 .. 50), "GET /errlog"]
--- response_body_like eval
[(map { "^ok\n\$" } 1 .. 50),
 'obs: cannot send records to "unix:/nonexistent-dir/obs.sock"']
--- shutdown_error_log eval
qr/obs: \d+ records not delivered to "unix:\/nonexistent-dir\/obs.sock" at exit/
--- no_error_log
[alert]
[crit]
[error]



=== TEST 2: the failure is logged once, not per request
--- http_config
    obs_sidecar unix:/nonexistent-dir/obs.sock buffer=4k flush=50ms;
--- config
    location /t { return 200 "ok\n"; }
--- request eval
[(map { "GET /t" } 1 .. 30), "GET /errlog"]
--- response_body_like eval
[(map { "^ok\n\$" } 1 .. 30),
 '\A(?![\s\S]*cannot send records[\s\S]*cannot send records)[\s\S]*cannot send records']



=== TEST 3: UDP to a port where nobody listens
--- http_config
    obs_sidecar udp:127.0.0.1:9 flush=50ms;
--- config
    location /t { return 200 "ok\n"; }
--- request eval
[map { "GET /t" } 1 .. 20]
--- response_body eval
[map { "ok\n" } 1 .. 20]
--- wait: 0.2
--- no_error_log
[alert]
[crit]



=== TEST 4: variables work without any sidecar (propagation only)
--- config
    location /t {
        obs on;
        return 200 "$obs_trace_id $obs_sampled\n";
    }
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- request
GET /t
--- response_body
12345678901234567890123456789012 1



=== TEST 5: directives that shape records, without obs_sidecar: a warning each, not an error
--- http_config
    obs_service_name backend-api;
    obs_tenant $http_x_tenant_id;
    obs_active_requests on;
--- config
    location /t {
        obs_route /t;
        obs_route_auto on;
        obs_upstream_span on;
        obs_log_field plan $http_x_plan;
        obs_metric counter biz_total $upstream_http_x_count;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
[qr/\[warn\] .*"obs_service_name" directive has no effect: records are not sent without "obs_sidecar" in \S+nginx.conf:\d+/,
 qr/\[warn\] .*"obs_tenant" directive has no effect: records are not sent without "obs_sidecar" in \S+nginx.conf:\d+/,
 qr/\[warn\] .*"obs_active_requests" directive has no effect: records are not sent without "obs_sidecar"/,
 qr/\[warn\] .*"obs_route" directive has no effect: records are not sent without "obs_sidecar"/,
 qr/\[warn\] .*"obs_route_auto" directive has no effect: records are not sent without "obs_sidecar"/,
 qr/\[warn\] .*"obs_upstream_span" directive has no effect: records are not sent without "obs_sidecar"/,
 qr/\[warn\] .*"obs_log_field" directive has no effect: records are not sent without "obs_sidecar"/,
 qr/\[warn\] .*"obs_metric" directive has no effect: records are not sent without "obs_sidecar"/]
--- no_error_log
[emerg]
[alert]



=== TEST 6: one warning per directive, where it first appears
--- http_config
    obs_tenant $http_x_tenant_id;
--- config
    location /a { obs_tenant $http_x_a; return 200 "a\n"; }
    location /b { obs_tenant $http_x_b; return 200 "b\n"; }
--- request
GET /errlog
--- response_body_like eval
qr/\A(?![\s\S]*"obs_tenant" directive has no effect[\s\S]*"obs_tenant" directive has no effect)[\s\S]*"obs_tenant" directive has no effect: records are not sent without "obs_sidecar" in \S+nginx.conf:\d+\n/



=== TEST 7: obs_route and obs_tenant read through $obs_route and $obs_tenant are used without a sidecar
--- http_config
    obs_service_name backend-api;
    obs_tenant $http_x_tenant_id;
--- config
    location /t {
        obs on;
        obs_route "/api/{id}";
        return 200 "$obs_route $obs_tenant\n";
    }
--- more_headers
X-Tenant-ID: acme
--- request
GET /t
--- response_body
/api/{id} acme
--- error_log
"obs_service_name" directive has no effect
--- no_error_log
"obs_route" directive has no effect
"obs_tenant" directive has no effect



=== TEST 8: no warning once obs_sidecar is set, even after the directives
--- http_config
    obs_service_name backend-api;
    obs_tenant $http_x_tenant_id;
    obs_sidecar unix:/nonexistent-dir/obs.sock;
--- config
    location /t {
        obs_log_field plan $http_x_plan;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- no_error_log
has no effect
