# vim:set ft= ts=4 sw=4 et fdm=marker:
# obs_metric: business metrics from what the services return, validated by
# nginx -t, and the observations the records carry (decoded by Google's
# protobuf runtime in t/helpers/obs_sink.py); requests in flight ride
# header-only datagrams (http_server_active_requests).

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    obs_service_name ml-engine;

    upstream backend {
        server unix:$TEST_NGINX_HTML_DIR/backend.sock;
    }

    server {
        listen unix:$TEST_NGINX_HTML_DIR/backend.sock;
        obs off;
        location /slow { echo_sleep 1; echo slow; }
        location / {
            add_header X-Recommendations-Count $arg_n;
            add_header X-Cache $arg_cache;
            add_header X-Embedding-Cache-Age $arg_age;
            return 200 "hello\n";
        }
    }
_EOC_

our $Metrics = <<'_EOC_';
        obs_metric counter recommendations_served_total
                   $upstream_http_x_recommendations_count;
        obs_metric counter cache_lookups_total 1
                   label=cache:$upstream_http_x_cache:HIT,MISS;
        obs_metric gauge embedding_cache_age_seconds
                   $upstream_http_x_embedding_cache_age;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->config) {
        my $c = $block->config;
        $c =~ s/\@METRICS\@/$Metrics/g;
        $block->set_value("config", $c);
    }
    ObsSink::preprocess($block, $HttpConfig);
});

run_tests();

__DATA__

=== TEST 1: the record carries each observation, labels as declared
--- config
    location /api/v1/recommendations {
        @METRICS@
        proxy_pass http://backend;
    }
--- request eval
["GET /api/v1/recommendations?n=7&cache=HIT&age=42.5",
 "GET /sink/records?path=/api/v1/recommendations"]
--- response_body_like eval
["hello", CORE::join('', map { "(?=[\\s\\S]*$_)" }
    '"metrics": \[\{"name": "recommendations_served_total", "type": 1, "value": "7"\}, '
    . '\{"labelName": "cache", "labelValue": "HIT", "name": "cache_lookups_total", "type": 1, "value": "1"\}, '
    . '\{"name": "embedding_cache_age_seconds", "type": 2, "value": "42.5"\}\]')]



=== TEST 2: an undeclared label value is "other", an empty one "none"; an absent value is not observed
--- config
    location /api/v1/recommendations {
        @METRICS@
        proxy_pass http://backend;
    }
--- request eval
["GET /api/v1/recommendations?cache=STALE",
 "GET /sink/records?path=/api/v1/recommendations",
 "GET /api/v1/recommendations?n=3",
 "GET /sink/records?path=/api/v1/recommendations"]
--- response_body_like eval
["hello",
 '^\{[^\n]*"metrics": \[\{"labelName": "cache", "labelValue": "other", "name": "cache_lookups_total", "type": 1, "value": "1"\}\][^\n]*\}\n$',
 "hello",
 '^\{[^\n]*"metrics": \[\{"name": "recommendations_served_total", "type": 1, "value": "3"\}, \{"labelName": "cache", "labelValue": "none", "name": "cache_lookups_total", "type": 1, "value": "1"\}\][^\n]*\}\n$']



=== TEST 3: a value the module cannot judge goes as it came (the sidecar rejects it); an over-long one as "(too long)"
--- config
    location /api/ {
        obs_metric counter items_total $arg_v;
        obs_metric gauge depth $arg_w;
        return 200 "ok\n";
    }
--- request eval
["GET /api/x?v=-4&w=" . ("9" x 65),
 "GET /sink/records?path=/api/x"]
--- response_body_like eval
["ok",
 '"metrics": \[\{"name": "items_total", "type": 1, "value": "-4"\}, \{"name": "depth", "type": 2, "value": "\(too long\)"\}\]']



=== TEST 4: a level with obs_metric of its own does not inherit the outer ones; a level without does
--- config
    obs_metric counter outer_total 2;
    location /api/own {
        obs_metric counter inner_total 5;
        return 200 "ok\n";
    }
    location /api/inherits {
        return 200 "ok\n";
    }
--- request eval
["GET /api/own", "GET /sink/records?path=/api/own",
 "GET /api/inherits", "GET /sink/records?path=/api/inherits"]
--- response_body_like eval
["ok", '"metrics": \[\{"name": "inner_total", "type": 1, "value": "5"\}\]',
 "ok", '"metrics": \[\{"name": "outer_total", "type": 1, "value": "2"\}\]']



=== TEST 5: without obs_metric a record has no observations
--- config
    location /api/plain { return 200 "ok\n"; }
--- request eval
["GET /api/plain", "GET /sink/records?path=/api/plain"]
--- response_body_like eval
["ok", '^(?![\s\S]*metrics)[\s\S]*"path": "/api/plain"']



=== TEST 6: requests in flight: a snapshot of the zone rides a datagram of its own
--- config
    location /api/slow { echo_sleep 0.2; echo ok; }
--- request eval
["GET /sink/headers", "GET /api/slow", "GET /sink/headers?wait=0.5"]
--- response_body_like eval
["", "ok", '"activeVersion": "[1-9]\d*", "activeZone": "[1-9]\d*"']



=== TEST 7b: every way a request ends gives its count back: error_page, rewrite, try_files, return
--- config
    location /api/fails {
        error_page 502 = /api/sorry;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/nobody-listens.sock;
    }
    location /api/sorry { return 200 "sorry\n"; }
    location /api/moved { rewrite ^ /api/target last; }
    location /api/target { return 200 "target\n"; }
    location /api/files { try_files /nothing-here @fallback; }
    location @fallback { return 200 "fallback\n"; }
    location /api/gone { return 404; }
--- request eval
["GET /sink/headers", "GET /api/fails", "GET /api/moved", "GET /api/files",
 "GET /api/gone", "GET /sink/headers?wait=0.5"]
--- error_code eval
[200, 200, 200, 200, 404, 200]
--- response_body_like eval
["", "sorry", "target", "fallback", "404",
 '(?m)^(?=[^\n]*"route": "/api/fails")(?=[^\n]*"route": "/api/moved")(?=[^\n]*"route": "/api/target")(?=[^\n]*"route": "/api/files")(?=[^\n]*"route": "/api/gone")(?![^\n]*"count")']



=== TEST 7c: a client that gives up (499) while its request is proxied
--- config
    location /api/abort {
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock:/slow;
    }
--- request
GET /api/abort
--- timeout: 0.3
--- abort
--- wait: 0.5
--- ignore_response



=== TEST 7d: ... is no longer in flight
--- config
    location /api/abort {
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock:/slow;
    }
--- request
GET /sink/headers?wait=0.5
--- response_body_like eval
'(?m)^(?=[^\n]*"route": "/api/abort")(?![^\n]*"count")'



=== TEST 7e: an HTTP/0.9 request gives its count back
--- config
    location /api/old { return 200 "old\n"; }
--- raw_request eval
"GET /api/old\r\n"
--- http09
--- response_body_like: old
--- wait: 0.3



=== TEST 7f: ... as the snapshot shows
--- config
    location /api/old { return 200 "old\n"; }
--- request
GET /sink/headers?wait=0.5
--- response_body_like eval
'(?m)^(?=[^\n]*"route": "/api/old")(?![^\n]*"count")'



=== TEST 7g: a key too long for the in-flight table counts under __overflow__, and is counted
--- config
    location /api/long {
        obs_route "/api/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        return 200 "long\n";
    }
--- request eval
["GET /sink/headers", "GET /api/long", "GET /sink/headers?wait=0.5"]
--- response_body_like eval
["", "long", '"active": \[\{"route": "__overflow__", "service": "__overflow__"\}\], "activeOverflow": "1"']



=== TEST 7h: a request in flight on an otherwise idle nginx is reported again every 30 s (the sidecar takes an nginx silent for its series TTL as gone)
--- config
    location /api/hang { echo_sleep 33; echo late; }
    location /api/start {
        proxy_read_timeout 200ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/api/hang;
    }
--- request eval
["GET /api/start", "GET /sink/headers?wait=1", "GET /sink/headers?wait=31"]
--- error_code eval
[504, 200, 200]
--- response_body_like eval
["", "", '"count": "1", "route": "/api/hang"']
--- timeout: 40



=== TEST 7: a type other than counter or gauge
--- config
    obs_metric histogram x_seconds 1;
--- must_die
--- error_log
invalid metric type "histogram" in "obs_metric", it must be "counter" or "gauge"



=== TEST 8: a name outside Prometheus's grammar
--- config
    obs_metric counter 9lives_total 1;
--- must_die
--- error_log
invalid metric name "9lives_total" in "obs_metric", it must match [a-zA-Z_][a-zA-Z0-9_]*



=== TEST 9: a name with a colon (reserved for recording rules)
--- config
    obs_metric gauge cache:age 1;
--- must_die
--- error_log
invalid metric name "cache:age" in "obs_metric"



=== TEST 10: a counter must end in _total
--- config
    obs_metric counter recommendations 1;
--- must_die
--- error_log
counter name "recommendations" in "obs_metric" must end in "_total"



=== TEST 11: a gauge may not take a suffix of another type
--- config
    obs_metric gauge queue_count 1;
--- must_die
--- error_log
gauge name "queue_count" in "obs_metric" may not end in "_count"



=== TEST 12: the gateway's own metric names are taken
--- config
    obs_metric counter http_server_requests_total 1;
--- must_die
--- error_log
metric name "http_server_requests_total" in "obs_metric" collides with the gateway's own metric "http_server_requests_total"



=== TEST 13: ... including a histogram's series and a counter's base name
--- config
    obs_metric gauge http_server_request_duration_seconds_bucket 1;
--- must_die
--- error_log
collides with the gateway's own metric "http_server_request_duration_seconds"



=== TEST 14: obs_ names the pipeline's own metrics
--- config
    obs_metric gauge obs_queue 1;
--- must_die
--- error_log
metric name "obs_queue" in "obs_metric" is reserved



=== TEST 15: a label the gateway sets
--- config
    obs_metric counter hits_total 1 label=tenant:$http_x_cache:HIT;
--- must_die
--- error_log
label name "tenant" in "obs_metric" collides with a label the gateway sets



=== TEST 16: a label name Prometheus reserves
--- config
    obs_metric counter hits_total 1 label=__cache:$http_x_cache:HIT;
--- must_die
--- error_log
invalid label name "__cache" in "obs_metric"



=== TEST 17: a label without a variable
--- config
    obs_metric counter hits_total 1 label=cache:HIT,MISS;
--- must_die
--- error_log
invalid label "label=cache:HIT,MISS" in "obs_metric", it must be "label=NAME:$variable:value,..."



=== TEST 18: a label that declares no values
--- config
    obs_metric counter hits_total 1 label=cache:$http_x_cache:;
--- must_die
--- error_log
invalid value "" of label "cache" in "obs_metric"



=== TEST 19: a declared value twice
--- config
    obs_metric counter hits_total 1 label=cache:$http_x_cache:HIT,MISS,HIT;
--- must_die
--- error_log
duplicate value "HIT" of label "cache" in "obs_metric"



=== TEST 20: "other" and "none" are the gateway's
--- config
    obs_metric counter hits_total 1 label=cache:$http_x_cache:HIT,other;
--- must_die
--- error_log
value "other" of label "cache" in "obs_metric" is reserved



=== TEST 21: at most 32 declared values
--- config
    obs_metric counter hits_total 1 label=cache:$http_x_cache:a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,a15,a16,a17,a18,a19,a20,a21,a22,a23,a24,a25,a26,a27,a28,a29,a30,a31,a32,a33;
--- must_die
--- error_log
label "cache" in "obs_metric" declares more than 32 values



=== TEST 22: one label per metric
--- config
    obs_metric counter hits_total 1 label=a:$http_x_a:x label=b:$http_x_b:y;
--- must_die
--- error_log
metric "hits_total" in "obs_metric" has more than one label



=== TEST 23: the same metric twice at one level
--- config
    obs_metric counter hits_total 1;
    obs_metric counter hits_total 2;
--- must_die
--- error_log
duplicate metric "hits_total" in "obs_metric"



=== TEST 24: one name, two meanings
--- config
    location /a { obs_metric counter hits_total 1; return 200; }
    location /b { obs_metric gauge hits 1; return 200; }
--- must_die
--- error_log
metric "hits" in "obs_metric" is declared elsewhere with another type or label



=== TEST 25: at most 16 metrics at one level
--- config
    obs_metric gauge m1 1; obs_metric gauge m2 1; obs_metric gauge m3 1;
    obs_metric gauge m4 1; obs_metric gauge m5 1; obs_metric gauge m6 1;
    obs_metric gauge m7 1; obs_metric gauge m8 1; obs_metric gauge m9 1;
    obs_metric gauge m10 1; obs_metric gauge m11 1; obs_metric gauge m12 1;
    obs_metric gauge m13 1; obs_metric gauge m14 1; obs_metric gauge m15 1;
    obs_metric gauge m16 1; obs_metric gauge m17 1;
--- must_die
--- error_log
too many "obs_metric" directives at this level, at most 16



=== TEST 26: an empty value
--- config
    obs_metric gauge depth "";
--- must_die
--- error_log
empty value of metric "depth" in "obs_metric"



=== TEST 27: a declared value with a space
--- config
    obs_metric counter hits_total 1 "label=cache:$http_x_cache:HIT,A B";
--- must_die
--- error_log
invalid value "A B" of label "cache" in "obs_metric"



=== TEST 28: obs_active_requests takes on or off
--- http_config
    obs_active_requests maybe;
--- config
--- must_die
--- error_log
invalid value "maybe" in "obs_active_requests" directive, it must be "on" or "off"
