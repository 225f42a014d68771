# vim:set ft= ts=4 sw=4 et fdm=marker:
# $obs_* variables in log_format, add_header and proxy_set_header.

use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

# A backend that shows what it got: the traceparent and X-Var (set from
# $obs_traceparent); @OFF@ in a config is a location under obs off that
# sends it there.
our $Echo = <<'_EOC_';
    server {
        listen unix:$TEST_NGINX_HTML_DIR/echo.sock;
        obs off;
        location / { return 200 "up=[$http_traceparent] var=[$http_x_var]\n"; }
    }
_EOC_

our $Off = <<'_EOC_';
location /off/ {
        obs off;
        proxy_set_header X-Var $obs_traceparent;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/echo.sock;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    my $config = $block->config;
    if (defined $config && $config =~ s/\@OFF\@\n/$Off/) {
        $block->set_value("config", $config);
    }
});

run_tests();

__DATA__

=== TEST 1: every variable, with an incoming parent
--- config
    location /t {
        obs on;
        obs_tenant $http_x_tenant_id;
        return 200 "trace=$obs_trace_id span=$obs_span_id parent=$obs_parent_id tp=$obs_traceparent sampled=$obs_sampled route=$obs_route tenant=$obs_tenant\n";
    }
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
X-Tenant-ID: acme
--- request
GET /t
--- response_body_like chomp
^trace=0af7651916cd43dd8448eb211c80319c span=([0-9a-f]{16}) parent=b7ad6b7169203331 tp=00-0af7651916cd43dd8448eb211c80319c-\1-01 sampled=1 route=/t tenant=acme$



=== TEST 2: without a parent, $obs_parent_id is empty
--- config
    obs on;
    location /t {
        return 200 "[$obs_parent_id] $obs_sampled\n";
    }
--- request
GET /t
--- response_body
[] 1



=== TEST 3: the ids stay the same for the whole request
--- config
    obs on;
    location /t {
        add_header X-Trace-Id $obs_trace_id;
        add_header X-Traceparent $obs_traceparent;
        return 200 "$obs_trace_id $obs_span_id\n";
    }
--- request
GET /t
--- response_body_like chomp
^([0-9a-f]{32}) ([0-9a-f]{16})$
--- response_headers_like
X-Trace-Id: ^[0-9a-f]{32}$
X-Traceparent: ^00-[0-9a-f]{32}-[0-9a-f]{16}-03$



=== TEST 4: the ids survive an internal redirect
--- config
    obs on;
    location /t {
        set $before $obs_trace_id;
        rewrite ^ /after last;
    }
    location /after {
        add_header X-After $obs_trace_id;
        return 200 "$obs_trace_id\n";
    }
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
--- request
GET /t
--- response_body
0af7651916cd43dd8448eb211c80319c



=== TEST 5: variables in log_format correlate access logs with traces
--- http_config
    log_format traced '$request_uri trace=$obs_trace_id span=$obs_span_id '
                      'parent=$obs_parent_id sampled=$obs_sampled '
                      'route=$obs_route tenant=$obs_tenant';
--- config
    obs on;
    access_log $TEST_NGINX_HTML_DIR/traced.log traced;
    location /api/ {
        obs_route_auto on;
        obs_tenant $arg_tenant;
        return 200 "ok\n";
    }
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
--- request eval
["GET /api/orders/123?tenant=t1", "GET /traced.log"]
--- response_body_like eval
["ok", "^/api/orders/123\\?tenant=t1 trace=0af7651916cd43dd8448eb211c80319c span=[0-9a-f]{16} parent=b7ad6b7169203331 sampled=1 route=/api/orders/\\{id\\} tenant=t1\n"]



=== TEST 6: with obs_trace_context ignore the gateway starts its own trace
--- config
    obs on;
    location /t {
        obs_trace_context ignore;
        return 200 "$obs_trace_id [$obs_parent_id]\n";
    }
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
--- request
GET /t
--- response_body_like chomp
^(?!0af7651916cd43dd8448eb211c80319c)[0-9a-f]{32} \[\]$



=== TEST 7: unsampled by obs_trace_sample 0
--- config
    obs on;
    location /t {
        obs_trace_sample 0;
        return 200 "$obs_sampled $obs_traceparent\n";
    }
--- request
GET /t
--- response_body_like chomp
^0 00-[0-9a-f]{32}-[0-9a-f]{16}-02$



=== TEST 8: $obs_traceparent: what propagate and inject send; extract and ignore send nothing of their own; obs off shows the client's
--- http_config eval
$::Echo
--- config
    location /m/ {
        obs on;
        proxy_set_header X-Var $obs_traceparent;
        location /m/extract/ {
            obs_trace_context extract;
            proxy_pass http://unix:$TEST_NGINX_HTML_DIR/echo.sock;
        }
        location /m/ignore/ {
            obs_trace_context ignore;
            proxy_pass http://unix:$TEST_NGINX_HTML_DIR/echo.sock;
        }
        location /m/inject/ {
            obs_trace_context inject;
            proxy_pass http://unix:$TEST_NGINX_HTML_DIR/echo.sock;
        }
        location /m/propagate/ {
            obs_trace_context propagate;
            proxy_pass http://unix:$TEST_NGINX_HTML_DIR/echo.sock;
        }
    }
    @OFF@
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
--- request eval
["GET /m/extract/", "GET /m/ignore/", "GET /m/inject/", "GET /m/propagate/",
 "GET /off/"]
--- response_body_like eval
['^up=\[00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\] var=\[00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-01\]$',
 '^up=\[00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\] var=\[00-(?!0af7651916cd43dd8448eb211c80319c)[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]\]$',
 '^up=\[(00-(?!0af7651916cd43dd8448eb211c80319c)[0-9a-f]{32}-[0-9a-f]{16}-0[0-3])\] var=\[\1\]$',
 '^up=\[(00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-01)\] var=\[\1\]$',
 '^up=\[(00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01)\] var=\[\1\]$']



=== TEST 9: without a client traceparent obs off sends none and shows none
--- http_config eval
$::Echo
--- config
    @OFF@
--- request
GET /off/
--- response_body
up=[] var=[]



=== TEST 10: under obs off no ids are made up
--- config
    location /t {
        obs off;
        return 200 "trace=[$obs_trace_id] span=[$obs_span_id] parent=[$obs_parent_id] tp=[$obs_traceparent] sampled=$obs_sampled\n";
    }
--- request
GET /t
--- response_body
trace=[] span=[] parent=[] tp=[] sampled=0



=== TEST 11: under obs off the client's context shows as it came
--- config
    location /t {
        obs off;
        return 200 "trace=[$obs_trace_id] span=[$obs_span_id] parent=[$obs_parent_id] tp=[$obs_traceparent] sampled=$obs_sampled\n";
    }
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
--- request
GET /t
--- response_body
trace=[0af7651916cd43dd8448eb211c80319c] span=[] parent=[b7ad6b7169203331] tp=[00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01] sampled=1



=== TEST 12: a lone $http_ value reads a header as the variable does
A repeated header is read as this nginx's own $http_ variable reads it (the
first value before 1.23, all of them joined after), and the variable's name
may be written in any case.
--- config
    obs on;
    location /t {
        obs_route $HTTP_X_Route;
        return 200 "$obs_route|$http_x_route\n";
    }
--- more_headers
X-Route: first
x-route: second
--- request
GET /t
--- response_body_like chomp
^(first(, second)?)\|\1$



=== TEST 13: a lone $http_ value of a header that did not come
--- config
    obs on;
    location /t {
        obs_route $http_x_route;
        return 200 "$obs_route\n";
    }
--- request
GET /t
--- response_body
unmatched
