# vim:set ft= ts=4 sw=4 et fdm=marker:
# Requests in flight (http_server_active_requests): the keys of the shared
# table.  Keys made from requests (a regex location's normalised URI,
# obs_route_auto, a service from a variable) hold at most 64 of the 128, so
# that clients cannot take the table from the routes of the configuration;
# a key nothing is counted in that no request used for 10 s goes when a new
# key needs room.  What a crashed worker left counted is given back by
# t/integration/test_active_requests.py (it kills workers).

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    obs_service_name backend-api;
_EOC_

# distinct routes the normaliser keeps: /auto/kaa, /auto/kba, ...
sub routes {
    my ($prefix, $n) = @_;
    return map {
        $prefix . chr(ord('a') + $_ % 26) . chr(ord('a') + int($_ / 26))
    } 0 .. $n - 1;
}

add_block_preprocessor(sub {
    ObsSink::preprocess(shift, $HttpConfig);
});

run_tests();

__DATA__

=== TEST 1: 140 routes made from requests take 64 keys; a route of the configuration still gets its own
--- config
    location ~ ^/auto/ { return 200 "auto\n"; }
    location /api/configured { return 200 "configured\n"; }
--- request eval
["GET /sink/headers", (map { "GET $_" } main::routes("/auto/k", 140)),
 "GET /api/configured", "GET /sink/active?wait=0.5&prefix=/auto/"]
--- response_body_like eval
["", ("auto") x 140, "configured",
 '^\{"count": \{[^\n]*"/api/configured": 0[,}][^\n]*\}, "keys": 66, "overflow": 76, "prefixed": 64\}$']



=== TEST 2: a service from a variable makes keys from requests too
--- config
    location /api/by-service {
        obs_service_name $arg_s;
        return 200 "service\n";
    }
    location /api/configured { return 200 "configured\n"; }
--- request eval
["GET /sink/headers",
 (map { "GET /api/by-service?s=s$_" } 1 .. 70),
 "GET /api/configured", "GET /sink/active?wait=0.5&prefix=/api/by-service"]
--- response_body_like eval
["", ("service") x 70, "configured",
 '"/api/configured": 0[,}][^\n]*"keys": 66, "overflow": 6, "prefixed": 64\}$']



=== TEST 3: keys of the configuration may take the whole table
--- config eval
CORE::join("", map { "    location /c/$_ { return 200 \"c\\n\"; }\n" } 1 .. 100)
--- request eval
["GET /sink/headers", (map { "GET /c/$_" } 1 .. 100),
 "GET /sink/active?wait=0.5&prefix=/c/"]
--- response_body_like eval
["", ("c") x 100, '"keys": 101, "overflow": 0, "prefixed": 100\}$']



=== TEST 4: a key nothing is counted in that no request used for 10 s goes when a new key needs room
--- config
    location ~ ^/auto/ { return 200 "auto\n"; }
    location /idle {
        obs off;
        echo_sleep 11;
        echo idle;
    }
--- request eval
["GET /sink/headers", (map { "GET $_" } main::routes("/auto/k", 70)),
 "GET /sink/active?wait=0.3&prefix=/auto/",
 "GET /idle", "GET /auto/fresh",
 "GET /sink/active?wait=0.5&prefix=/auto/"]
--- response_body_like eval
["", ("auto") x 70,
 '"keys": 65, "overflow": 6, "prefixed": 64\}$',
 "idle", "auto",
 '^\{"count": \{"/auto/fresh": 0, "__overflow__": 0\}, "keys": 2, "overflow": 6, "prefixed": 1\}$']
--- timeout: 20
