# vim:set ft= ts=4 sw=4 et fdm=marker:
# The proxy never suffers from the sidecar: absent, or unreachable over UDP,
# requests are served as usual and the problem is logged once, not per
# request.

use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

# Error log checks that span a whole request list read the log through
# /errlog (error_log sections are checked per request).
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", ($block->config // '') . <<'_EOC_');
    location = /errlog {
        obs off;
        default_type text/plain;
        alias $TEST_NGINX_HTML_DIR/../logs/error.log;
    }
_EOC_
});

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
