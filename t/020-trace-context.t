# vim:set ft= ts=4 sw=4 et fdm=marker:
# W3C Trace Context as the backend sees it: the cases of the W3C test suite
# (test/test.py of w3c/trace-context), the obs_trace_context modes,
# sampling, and a new parent id for every upstream attempt.
#
# The backend echoes the raw request headers it received
# ($echo_client_request_headers of the echo module).

use lib 't/helpers';
use ObsSpec;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $Backend = <<'_EOC_';
    server {
        listen unix:$TEST_NGINX_HTML_DIR/backend.sock;
        obs off;
        location / {
            echo -n $echo_client_request_headers;
        }
    }
_EOC_

# /t proxies to that backend; a block's --- proxy_directives replace the
# location's "obs on;" (a block's own --- config replaces the location).
# Blocks without a request of their own send GET /t.
sub proxy {
    my $directives = shift // "obs on;\n";
    $directives =~ s/^[ \t]*(.+?)[ \t]*$/        $1/mg;
    return <<"_EOC_";
    location /t {
$directives        proxy_pass http://unix:\$TEST_NGINX_HTML_DIR/backend.sock;
    }
_EOC_
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $Backend) unless defined $block->http_config;
    $block->set_value("config", proxy($block->proxy_directives))
        unless defined $block->config;
    $block->set_value("request", "GET /t\n")
        unless defined $block->request || defined $block->raw_request;
});

# Invalid traceparents (the W3C suite's): each starts a new trace, so the
# backend never gets the id that was sent.  [what, the header, what the new
# trace id may not be (regex lookaheads)]
my @InvalidTraceparents = (
    [ 'version 00 with a trailing character is invalid',
      '00-12345678901234567890123456789012-1234567890123456-01.',
      '(?!12345678901234567890123456789012)' ],
    [ 'version 00 with extra fields is invalid',
      '00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like',
      '(?!12345678901234567890123456789012)' ],
    [ 'a future version still needs a dash after the flags',
      'cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like',
      '(?!12345678901234567890123456789012)' ],
    [ 'version ff is invalid',
      'ff-12345678901234567890123456789012-1234567890123456-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'illegal characters in the version',
      '.0-12345678901234567890123456789012-1234567890123456-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'version too long',
      '000-12345678901234567890123456789012-1234567890123456-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'version too short',
      '0-12345678901234567890123456789012-1234567890123456-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'all-zero trace id',
      '00-00000000000000000000000000000000-1234567890123456-01',
      '(?!0{32})' ],
    [ 'illegal character in the trace id',
      '00-1234567890123456789012345678901.-1234567890123456-01',
      '(?!1234567890123456789012345678901)' ],
    [ 'uppercase hex is not allowed',
      '00-1234567890ABCDEF1234567890ABCDEF-1234567890123456-01',
      '(?!1234567890abcdef1234567890abcdef)' ],
    [ 'trace id too long',
      '00-123456789012345678901234567890123-1234567890123456-01',
      '(?!12345678901234567890123456789012)(?!23456789012345678901234567890123)' ],
    [ 'trace id too short',
      '00-1234567890123456789012345678901-1234567890123456-01',
      '(?!1234567890123456789012345678901)' ],
    [ 'all-zero parent id',
      '00-12345678901234567890123456789012-0000000000000000-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'illegal character in the parent id',
      '00-12345678901234567890123456789012-123456789012345.-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'parent id too long',
      '00-12345678901234567890123456789012-12345678901234567-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'parent id too short',
      '00-12345678901234567890123456789012-123456789012345-01',
      '(?!12345678901234567890123456789012)' ],
    [ 'illegal characters in the flags',
      '00-12345678901234567890123456789012-1234567890123456-.0',
      '(?!12345678901234567890123456789012)' ],
    [ 'flags too long',
      '00-12345678901234567890123456789012-1234567890123456-001',
      '(?!12345678901234567890123456789012)' ],
    [ 'flags too short',
      '00-12345678901234567890123456789012-1234567890123456-1',
      '(?!12345678901234567890123456789012)' ],
);

# Tracestates that are invalid whole: with a valid traceparent, none goes on.
# [what, the tracestate header(s)]
my @InvalidTracestates = (
    [ 'illegal key characters invalidate tracestate', 'foo.bar=1' ],
    [ 'uppercase keys invalidate tracestate', 'FOO=1' ],
    [ 'a key starting with @ invalidates tracestate', '@foo=1,bar=2' ],
    [ 'illegal values invalidate tracestate', 'foo=bar=baz' ],
    [ 'an empty value invalidates tracestate', 'foo=,bar=3' ],
    [ '33 members invalidate tracestate',
      CORE::join(',', map { sprintf "bar%02d=%02d", $_, $_ } 1 .. 33) ],
    [ 'a 257-character key invalidates tracestate',
      "foo=1\ntracestate: " . ('z' x 257) . "=1" ],
    [ 'a 257-character key with @ invalidates tracestate',
      "foo=1\ntracestate: t\@" . ('v' x 255) . "=1" ],
);

sub invalid_traceparent {
    my ($what, $header, $not) = @{ $_[0] };
    return <<"_EOB_";
=== TEST 0: $what
--- more_headers
traceparent: $header
--- response_body_like chomp
traceparent: 00-$not\[0-9a-f]{32}-



_EOB_
}

sub invalid_tracestate {
    my ($what, $tracestate) = @{ $_[0] };
    return <<"_EOB_";
=== TEST 0: $what
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate: $tracestate
--- response_body_unlike: tracestate



_EOB_
}

spec_string(ObsSpec::expand(\*DATA,
    INVALID_TRACEPARENTS => [ map { invalid_traceparent($_) }
                                  @InvalidTraceparents ],
    INVALID_TRACESTATES => [ map { invalid_tracestate($_) }
                                 @InvalidTracestates ]));

run_tests();

__DATA__

=== TEST 1: no traceparent: a new sampled trace with the random flag
--- response_body_like chomp
\A(?![\s\S]*traceparent[\s\S]*traceparent)[\s\S]*\r\ntraceparent: 00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-03\r\n
--- response_body_unlike: tracestate



=== TEST 2: valid traceparent: same trace id, new parent id, flags kept
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-(?!1234567890123456)[0-9a-f]{16}-01\r\n



=== TEST 3: duplicated traceparent starts a new trace and sends one header
--- more_headers
traceparent: 00-12345678901234567890123456789011-1234567890123456-01
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
\A(?![\s\S]*traceparent:[\s\S]*traceparent:)[\s\S]*traceparent: 00-(?!1234567890123456789012345678901)[0-9a-f]{32}-[0-9a-f]{16}-03\r\n



=== TEST 4: a header named trace-parent is not trace context
--- more_headers
trace-parent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
\r\ntraceparent: 00-(?!12345678901234567890123456789012)[0-9a-f]{32}-



=== TEST 5: header names are case-insensitive
--- more_headers
TrAcEpArEnT: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
\A(?![\s\S]*traceparent:[\s\S]*traceparent:)(?i)[\s\S]*traceparent: 00-12345678901234567890123456789012-



=== TEST 6: a future version is accepted
--- more_headers
traceparent: cc-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-01\r\n



=== TEST 7: a future version may carry more fields
--- more_headers
traceparent: cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-01\r\n



@INVALID_TRACEPARENTS@



=== TEST 27: optional whitespace around the value
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\ntraceparent: \t 00-12345678901234567890123456789012-1234567890123456-01 \t\r\n\r\n"
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-01\r\n



=== TEST 28: tracestate without traceparent is dropped
--- more_headers
tracestate: foo=1,bar=2
--- response_body_unlike: tracestate
--- response_body_like: traceparent: 00-



=== TEST 29: tracestate is inherited with a valid traceparent
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate: foo=1,bar=2
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-00\r\ntracestate: foo=1,bar=2\r\n



=== TEST 30: tracestate with an invalid traceparent is dropped
--- more_headers
traceparent: 00-00000000000000000000000000000000-1234567890123456-01
tracestate: foo=1
--- response_body_unlike: tracestate



=== TEST 31: an empty tracestate is not sent on
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate:
--- response_body_unlike: tracestate



=== TEST 32: empty tracestate headers among others are dropped
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate:
tracestate: foo=1
tracestate:
--- response_body_like chomp
\A(?![\s\S]*tracestate:[\s\S]*tracestate:)[\s\S]*\r\ntracestate: foo=1\r\n



=== TEST 33: several tracestate headers are combined in order
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate: foo=1,bar=2
tracestate: rojo=1,congo=2
tracestate: baz=3
--- response_body_like chomp
\r\ntracestate: foo=1,bar=2,rojo=1,congo=2,baz=3\r\n



=== TEST 34: duplicated keys keep tracestate (Level 2): the first of each key
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate: foo=1,bar=2
tracestate: foo=2,baz=3,bar=4
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[\s\S]*\r\ntracestate: foo=1,bar=2,baz=3\r\n



=== TEST 35: all allowed characters are kept
--- more_headers eval
"traceparent: 00-12345678901234567890123456789012-1234567890123456-00\n"
. "tracestate: abcdefghijklmnopqrstuvwxyz0123456789_-*/\@a-z0-9_-*/="
. CORE::join('', map { chr } 0x20 .. 0x2B, 0x2D .. 0x3C, 0x3E .. 0x7E)
--- response_body_like eval
"tracestate: abcdefghijklmnopqrstuvwxyz0123456789_-\\*/\@a-z0-9_-\\*/="
. quotemeta(CORE::join('', map { chr } 0x20 .. 0x2B, 0x2D .. 0x3C, 0x3E .. 0x7E))
. "\r\n"



=== TEST 36: whitespace around members is removed
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "traceparent: 00-12345678901234567890123456789012-1234567890123456-00\r\n"
. "tracestate: foo=1 \t , \t bar=2, \t baz=3\r\n\r\n"
--- response_body_like chomp
\r\ntracestate: foo=1,bar=2,baz=3\r\n



@INVALID_TRACESTATES@



=== TEST 45: Level 2 keys: @ anywhere after the first character
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
tracestate: foo@@bar=1,foo@=2,1a@b@c=3,bar=4
--- response_body_like chomp
\r\ntracestate: foo@@bar=1,foo@=2,1a@b@c=3,bar=4\r\n



=== TEST 46: 32 members are kept
--- more_headers eval
"traceparent: 00-12345678901234567890123456789012-1234567890123456-00\n"
. "tracestate: " . CORE::join(',', map { sprintf "bar%02d=%02d", $_, $_ } 1 .. 16) . "\n"
. "tracestate: " . CORE::join(',', map { sprintf "bar%02d=%02d", $_, $_ } 17 .. 32)
--- response_body_like eval
"tracestate: " . CORE::join(',', map { sprintf "bar%02d=%02d", $_, $_ } 1 .. 32) . "\r\n"



=== TEST 47: a 256-character key is valid, a long member may be shed
--- more_headers eval
"traceparent: 00-12345678901234567890123456789012-1234567890123456-00\n"
. "tracestate: foo=1\ntracestate: " . ('z' x 256) . "=1"
--- response_body_like eval
"tracestate: foo=1,z{256}=1\r\n"



=== TEST 48: Level 2: no tenant/system length limits, a 256-character key with @
--- more_headers eval
"traceparent: 00-12345678901234567890123456789012-1234567890123456-00\n"
. "tracestate: foo=1\ntracestate: " . ('t' x 10) . '@' . ('v' x 245) . "=1"
--- response_body_like: tracestate: foo=1,t{10}@v{245}=1\r\n



=== TEST 49: an over-long list sheds long members from the end first
--- more_headers eval
"traceparent: 00-12345678901234567890123456789012-1234567890123456-00\n"
. "tracestate: a=" . ('1' x 200) . ",b=" . ('2' x 100) . ",c=" . ('3' x 150) . ",d=" . ('4' x 100)
--- response_body_like eval
"tracestate: a=" . ('1' x 200) . ",b=" . ('2' x 100) . ",d=" . ('4' x 100) . "\r\n"



=== TEST 50: extract only: the backend sees the client's header untouched
--- proxy_directives
obs on;
obs_trace_context extract;
add_header X-Trace $obs_trace_id;
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-1234567890123456-01\r\n
--- response_headers
X-Trace: 12345678901234567890123456789012



=== TEST 51: extract without a header: nothing is sent upstream
--- proxy_directives
obs on;
obs_trace_context extract;
--- response_body_unlike: traceparent



=== TEST 52: inject only: a new trace even with a valid incoming one
--- proxy_directives
obs on;
obs_trace_context inject;
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
tracestate: foo=1
--- response_body_like chomp
\A(?![\s\S]*traceparent:[\s\S]*traceparent:)(?![\s\S]*tracestate)[\s\S]*traceparent: 00-(?!12345678901234567890123456789012)[0-9a-f]{32}-[0-9a-f]{16}-03\r\n



=== TEST 53: ignore: headers pass through, the gateway keeps its own ids
--- proxy_directives
obs on;
obs_trace_context ignore;
add_header X-Trace $obs_trace_id;
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-1234567890123456-01\r\n
--- response_headers_like
X-Trace: ^(?!12345678901234567890123456789012)[0-9a-f]{32}$



=== TEST 54: obs off: the request passes through untouched
--- proxy_directives
obs off;
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-1234567890123456-01\r\n



=== TEST 55: sampling 0: new traces are not sampled but keep the random flag
--- proxy_directives
obs on;
obs_trace_sample 0;
--- response_body_like chomp
traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-02\r\n



=== TEST 56: sampling is parent-based: an incoming sampled flag wins
--- proxy_directives
obs on;
obs_trace_sample 0;
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-01\r\n



=== TEST 57: an incoming unsampled flag wins over sampling 1
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-00
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-00\r\n



=== TEST 58: the incoming random flag is propagated, unknown flags are not
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-ff
--- response_body_like chomp
traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-03\r\n



=== TEST 59: without an upstream span the backend's parent is the gateway span
--- proxy_directives
obs on;
proxy_set_header X-Gateway-Span $obs_span_id;
--- response_body_like chomp
(?i)x-gateway-span: ([0-9a-f]{16})\r\n[\s\S]*traceparent: 00-[0-9a-f]{32}-\1-03\r\n



=== TEST 60: with obs_upstream_span on the backend's parent is a new span
--- proxy_directives
obs on;
obs_upstream_span on;
proxy_set_header X-Gateway-Span $obs_span_id;
--- response_body_like chomp
(?i)x-gateway-span: ([0-9a-f]{16})\r\n[\s\S]*traceparent: 00-[0-9a-f]{32}-(?!\1)[0-9a-f]{16}-03\r\n



=== TEST 61: $obs_traceparent in proxy_set_header replaces the client's
--- proxy_directives
obs on;
obs_trace_context extract;
proxy_set_header traceparent $obs_traceparent;
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- response_body_like chomp
\A(?![\s\S]*traceparent:[\s\S]*traceparent:)[\s\S]*traceparent: 00-12345678901234567890123456789012-(?!1234567890123456)[0-9a-f]{16}-01\r\n



=== TEST 62: every upstream attempt gets its own parent id (keepalive upstream)
--- http_config
    upstream pool {
        server unix:$TEST_NGINX_HTML_DIR/fail.sock;
        server unix:$TEST_NGINX_HTML_DIR/ok.sock;
        keepalive 4;
    }
    log_format failed 'failed $http_traceparent';
    log_format served 'served $http_traceparent';
    server {
        listen unix:$TEST_NGINX_HTML_DIR/fail.sock;
        obs off;
        access_log $TEST_NGINX_HTML_DIR/attempts.log failed;
        location / { return 502; }
    }
    server {
        listen unix:$TEST_NGINX_HTML_DIR/ok.sock;
        obs off;
        access_log $TEST_NGINX_HTML_DIR/attempts.log served;
        location / { return 200 "ok\n"; }
    }
--- config
    location /t {
        obs on;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_next_upstream error http_502;
        proxy_pass http://pool;
    }
--- request eval
["GET /t", "GET /attempts.log"]
--- response_body_like eval
["ok", "\\Afailed 00-([0-9a-f]{32})-([0-9a-f]{16})-03\nserved 00-\\1-(?!\\2)[0-9a-f]{16}-03\n\\z"]



=== TEST 63: auth_request subrequests carry the same trace
--- http_config
    log_format tp '$uri $http_traceparent';
    server {
        listen unix:$TEST_NGINX_HTML_DIR/auth.sock;
        obs off;
        access_log $TEST_NGINX_HTML_DIR/auth.log tp;
        location / { return 204; }
    }
    server {
        listen unix:$TEST_NGINX_HTML_DIR/backend.sock;
        obs off;
        location / { echo -n $echo_client_request_headers; }
    }
--- config
    location /t {
        obs on;
        auth_request /auth;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/backend.sock;
    }
    location = /auth {
        internal;
        obs on;
        proxy_pass http://unix:$TEST_NGINX_HTML_DIR/auth.sock;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
--- more_headers
traceparent: 00-12345678901234567890123456789012-1234567890123456-01
--- request eval
["GET /t", "GET /auth.log"]
--- response_body_like eval
["traceparent: 00-12345678901234567890123456789012-[0-9a-f]{16}-01\r\n",
 "\\A/auth 00-12345678901234567890123456789012-(?!1234567890123456)[0-9a-f]{16}-01\n\\z"]
