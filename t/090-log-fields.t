# vim:set ft= ts=4 sw=4 et fdm=marker:
# obs_log_field: named values for the log line and the span, plain or
# pseudonymised with HMAC-SHA256.  Records are decoded by Google's Python
# protobuf runtime (t/helpers/obs_sink.py) and every HMAC is compared with
# Python's hmac module, not computed with this module's code.

use lib 't/helpers';
use ObsSink;
use Test::Nginx::Socket 'no_plan';

use File::Temp qw(tempdir);
use POSIX ();

our ($Dir, %Hmac);

BEGIN {
    $Dir = tempdir("obs-fields-XXXXXX", TMPDIR => 1, CLEANUP => 1);

    my %files = (
        "user.key"  => "0123456789abcdef-fields-test-key\nsecond line ignored\n",
        "other.key" => "another-key-of-at-least-16-bytes\n",
        "long.key"  => ("k" x 100) . "-longer-than-a-sha256-block\n",
        "short.key" => "fifteen-bytes!!\n",
        "empty.key" => "",
    );

    for my $name (keys %files) {
        open my $fh, '>', "$Dir/$name" or die $!;
        print $fh $files{$name};
        close $fh;
    }

    mkdir "$Dir/dir.key";
    POSIX::mkfifo("$Dir/fifo.key", 0600) or die "mkfifo: $!";
    symlink "$Dir/user.key", "$Dir/link.key" or die "symlink: $!";

    # HMAC-SHA256 by Python's hmac module, over the key file's first line
    for my $case (["user", "alice"], ["user", "bob"], ["user", "u" x 300],
                  ["other", "alice"], ["long", "alice"])
    {
        my ($key, $value) = @$case;
        my $hex = `/usr/bin/python3 -c 'import hashlib, hmac, sys; print(hmac.new(open(sys.argv[1], "rb").readline().rstrip(b"\\n"), sys.argv[2].encode(), hashlib.sha256).hexdigest())' $Dir/$key.key $value`;
        die "python3 hmac failed" if $? != 0;
        chomp $hex;
        $Hmac{"$key:$value"} = $hex;
    }

    $ENV{TEST_NGINX_FIELDS} = $Dir;
}

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

our $HttpConfig = <<'_EOC_';
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    obs_log_field plan $arg_plan;
    obs_log_field user_hash $arg_user hmac=$TEST_NGINX_FIELDS/user.key;
_EOC_

add_block_preprocessor(sub { ObsSink::preprocess(shift, $HttpConfig) });

run_tests();

__DATA__

=== TEST 1: fields from the http level: exact values, in order; the user id travels only as its HMAC (Python's hmac gives the same)
--- config
    location /a { return 200 "ok\n"; }
--- request eval
["GET /a?plan=gold&user=alice", "GET /sink/records?path=/a"]
--- response_body_like eval
["ok", '"fields": \[\{"name": "plan", "value": "gold"\}, \{"name": "user_hash", "value": "' . $::Hmac{"user:alice"} . '"\}\]']
--- response_body_unlike eval
["^\$", "alice"]
--- no_error_log
[alert]



=== TEST 2: the same user gives the same pseudonym, another user another one
--- config
    location /a { return 200 "ok\n"; }
--- request eval
["GET /a?user=alice", "GET /a?user=bob", "GET /sink/records?path=/a&min=2"]
--- response_body_like eval
["ok", "ok", '"value": "' . $::Hmac{"user:alice"} . '"[\s\S]*"value": "' . $::Hmac{"user:bob"} . '"']



=== TEST 3: an empty or missing value adds no field; with none, the record has no fields
--- config
    location /a { return 200 "ok\n"; }
--- request eval
["GET /a?plan=&user=bob", "GET /sink/records?path=/a", "GET /a", "GET /sink/records?path=/a"]
--- response_body_like eval
["ok", '"fields": \[\{"name": "user_hash", "value": "' . $::Hmac{"user:bob"} . '"\}\]', "ok", '"path": "/a"']
--- response_body_unlike eval
["^\$", '"plan"', "^\$", '"fields"']



=== TEST 4: in one batch, records without fields before and after one with fields
--- http_config
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=1s;
    obs_log_field plan $arg_plan;
--- config
    location /mix { return 200 "ok\n"; }
--- request eval
["GET /mix", "GET /mix?plan=gold", "GET /mix", "GET /sink/records?path=/mix&min=3"]
--- response_body_like eval
["ok", "ok", "ok", '\A(?![^\n]*"fields")[^\n]*\n[^\n]*"fields": \[\{"name": "plan", "value": "gold"\}\][^\n]*\n(?![^\n]*"fields")[^\n]*\n\z']



=== TEST 5: inheritance as proxy_set_header: a level with its own obs_log_field replaces the outer list
--- config
    obs_log_field tier server-level;
    location /inherit { return 200 "ok\n"; }
    location /own {
        obs_log_field kind "own-$arg_plan";
        obs_log_field user_hash $arg_user hmac=$TEST_NGINX_FIELDS/other.key;
        return 200 "ok\n";
    }
--- request eval
["GET /inherit?plan=gold&user=alice", "GET /sink/records?path=/inherit",
 "GET /own?plan=gold&user=alice", "GET /sink/records?path=/own"]
--- response_body_like eval
["ok", '"fields": \[\{"name": "tier", "value": "server-level"\}\]',
 "ok", '"fields": \[\{"name": "kind", "value": "own-gold"\}, \{"name": "user_hash", "value": "' . $::Hmac{"other:alice"} . '"\}\]']
--- response_body_unlike eval
["^\$", '"plan"', "^\$", '"tier"']



=== TEST 6: a key longer than SHA-256's block is hashed first, as RFC 2104 says (Python's hmac agrees)
--- config
    location /lk {
        obs_log_field user_hash $arg_user hmac=$TEST_NGINX_FIELDS/long.key;
        return 200 "ok\n";
    }
--- request eval
["GET /lk?user=alice", "GET /sink/records?path=/lk"]
--- response_body_like eval
["ok", '"fields": \[\{"name": "user_hash", "value": "' . $::Hmac{"long:alice"} . '"\}\]']



=== TEST 7: a long value is cut to 256 bytes at a character's start and marked with an ellipsis; an HMAC covers the whole value
--- config
    location /long {
        obs_log_field ascii $http_x_ascii;
        obs_log_field utf8 $http_x_utf8;
        obs_log_field user_hash $arg_user hmac=$TEST_NGINX_FIELDS/user.key;
        return 200 "ok\n";
    }
--- more_headers eval
"X-Ascii: " . ("a" x 300) . "\nX-Utf8: " . ("\xc3\xa9" x 150) . "\n"
--- request eval
["GET /long?user=" . ("u" x 300), "GET /sink/records?path=/long"]
--- response_body_like eval
["ok", CORE::join('', map { "(?=[\\s\\S]*$_)" }
    '\{"name": "ascii", "value": "a{253}\\\\u2026"\}',
    '\{"name": "utf8", "value": "(?:\\\\u00e9){126}\\\\u2026"\}',
    '\{"name": "user_hash", "value": "' . $::Hmac{"user:" . ("u" x 300)} . '"\}',
)]



=== TEST 8: an error page keeps the fields of the location the route was taken in
--- config
    location /api/ {
        obs_log_field from api;
        error_page 404 /404.html;
        return 404;
    }
    location = /404.html {
        obs_log_field from error-page;
        return 200 "not here\n";
    }
--- request eval
["GET /api/x", "GET /sink/records?path=/api/x"]
--- error_code eval
[404, 200]
--- response_body_like eval
["not here", '"fields": \[\{"name": "from", "value": "api"\}\]']



=== TEST 9: HTTP/0.9 (no header list at all) is recorded with its fields
--- config
    location /h09 {
        obs_log_field hdr $http_x_plan;
        obs_log_field arg $arg_plan hmac=$TEST_NGINX_FIELDS/user.key;
        return 200 "ok\n";
    }
--- raw_request eval
"GET /h09?plan=alice\r\n"
--- http09
--- response_body
ok
--- no_error_log
[alert]
[crit]



=== TEST 10: ... its record
--- config
--- request eval
["GET /sink/records?path=/h09"]
--- response_body_like eval
['"fields": \[\{"name": "arg", "value": "' . $::Hmac{"user:alice"} . '"\}\]']
--- response_body_unlike eval
['"hdr"']



=== TEST 11: the largest possible record (every text at its limit, 8 attempts, 8 distinct fields of the longest name and value) fits its size bound
--- http_config eval
$::HttpConfig . $ObsSink::LargestHttp
--- config eval
"location /big/ {\n    obs_route \"\$uri\$uri\";\n    proxy_pass http://eight_dead;\n"
. CORE::join('', map { "    obs_log_field f${_}" . ("x" x 62) . " ${_}\$http_x_big;\n" } 1 .. 8)
. "}\n"
--- more_headers eval
$ObsSink::LargestHeaders . "X-Big: " . ("b" x 400) . "\n"
--- request eval
["GET /big/" . ("p" x 1100), "GET /sink/records?min=1&wait=2&status=502"]
--- error_code eval
[502, 200]
--- response_body_like eval
["", '"fields": \[(?:\{"name": "f(\d)x{62}", "value": "\1b{252}\\\\u2026"\}, ){7}\{"name": "f8x{62}", "value": "8b{252}\\\\u2026"\}\]']
--- no_error_log
[alert]



=== TEST 12: full batches of records with fields stay within their size bound
--- http_config
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK buffer=4k flush=50ms;
--- config eval
"location /many {\n" . CORE::join('', map { "    obs_log_field f$_ \$arg_v;\n" } 1 .. 8)
. "    return 200 \"ok\\n\";\n}\n"
--- request eval
[(map { "GET /many?v=$_" } 1 .. 60), "GET /sink/records?path=/many&min=60"]
--- response_body_like eval
[("ok") x 60, '\A(?:[^\n]*"fields": \[(?:\{"name": "f\d", "value": "\d+"\}, ){7}\{"name": "f8", "value": "\d+"\}\][^\n]*\n){60}\z']
--- no_error_log
[alert]



=== TEST 13: all directive forms accepted at every level
--- http_config
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=50ms;
    obs_log_field a.b_c9 constant;
    obs_log_field x "$arg_a:$arg_b" hmac=$TEST_NGINX_FIELDS/user.key;
--- config
    obs_log_field z $remote_addr;
    location /t {
        obs_log_field u $uri;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok



=== TEST 14: nginx -t: a name outside [a-z][a-z0-9_.]{0,63}
--- config
    obs_log_field User $arg_a;
--- must_die
--- error_log
invalid name "User" in "obs_log_field" directive, it must match [a-z][a-z0-9_.]{0,63}



=== TEST 15: nginx -t: a name starting with a digit
--- config
    obs_log_field 1abc $arg_a;
--- must_die
--- error_log
invalid name "1abc" in "obs_log_field" directive



=== TEST 16: nginx -t: a name with a dash
--- config
    obs_log_field a-b $arg_a;
--- must_die
--- error_log
invalid name "a-b" in "obs_log_field" directive



=== TEST 17: nginx -t: a name over 64 bytes
--- config eval
"obs_log_field a" . ("b" x 64) . " \$arg_a;"
--- must_die
--- error_log eval
qr/invalid name "ab{64}" in "obs_log_field" directive/



=== TEST 18: nginx -t: a name the log line already has
--- config
    obs_log_field status $arg_a;
--- must_die
--- error_log
name "status" in "obs_log_field" directive is a key the log line or the span already has



=== TEST 19: nginx -t: trace_id is the log line's own
--- config
    obs_log_field trace_id $arg_a;
--- must_die
--- error_log
name "trace_id" in "obs_log_field" directive is a key the log line or the span already has



=== TEST 20: nginx -t: a name the span already has
--- config
    obs_log_field http.route $arg_a;
--- must_die
--- error_log
name "http.route" in "obs_log_field" directive is a key the log line or the span already has



=== TEST 21: nginx -t: tenant.id is the span's own
--- config
    obs_log_field tenant.id $arg_a;
--- must_die
--- error_log
name "tenant.id" in "obs_log_field" directive is a key the log line or the span already has



=== TEST 22: nginx -t: a name twice in one block
--- config
    location /d {
        obs_log_field plan $arg_a;
        obs_log_field plan $arg_b;
    }
--- must_die
--- error_log
duplicate name "plan" in "obs_log_field" directive



=== TEST 23: nginx -t: more than 8 fields in one block
--- config eval
"location /many {\n" . CORE::join('', map { "    obs_log_field f$_ \$arg_a;\n" } 1 .. 9) . "}\n"
--- must_die
--- error_log
too many "obs_log_field" directives, at most 8 in one block



=== TEST 24: nginx -t: an unknown parameter
--- config
    obs_log_field user $arg_a sha=$TEST_NGINX_FIELDS/user.key;
--- must_die
--- error_log
invalid parameter "sha=



=== TEST 25: nginx -t: hmac= without a file
--- config
    obs_log_field user $arg_a hmac=;
--- must_die
--- error_log
invalid parameter "hmac=" in "obs_log_field" directive



=== TEST 26: nginx -t: a missing key file
--- config
    obs_log_field user $arg_a hmac=$TEST_NGINX_FIELDS/none.key;
--- must_die
--- error_log eval
qr/key file "[^"]*none.key" in "obs_log_field": open\(\) failed/



=== TEST 27: nginx -t: a directory as key file
--- config
    obs_log_field user $arg_a hmac=$TEST_NGINX_FIELDS/dir.key;
--- must_die
--- error_log eval
qr/key file "[^"]*dir.key" in "obs_log_field" is not a regular file/



=== TEST 28b: nginx -t: a FIFO as key file is refused at once (open() would wait for a writer)
--- config
    obs_log_field user $arg_a hmac=$TEST_NGINX_FIELDS/fifo.key;
--- must_die
--- error_log eval
qr/key file "[^"]*fifo.key" in "obs_log_field" is not a regular file/



=== TEST 28c: nginx -t: a device as key file (a key nobody else has)
--- config
    obs_log_field user $arg_a hmac=/dev/urandom;
--- must_die
--- error_log eval
qr/key file "\/dev\/urandom" in "obs_log_field" is not a regular file/



=== TEST 28d: a symlink to a key file is the file (Kubernetes mounts secrets so)
--- config
    location /f {
        obs_log_field user_hash $arg_user hmac=$TEST_NGINX_FIELDS/link.key;
        return 200 "f\n";
    }
--- request eval
["GET /f?user=alice", "GET /sink/records?path=/f"]
--- response_body_like eval
["f", '"fields": \[\{"name": "user_hash", "value": "' . $::Hmac{"user:alice"} . '"\}\]']



=== TEST 28: nginx -t: an empty key file
--- config
    obs_log_field user $arg_a hmac=$TEST_NGINX_FIELDS/empty.key;
--- must_die
--- error_log eval
qr/key file "[^"]*empty.key" in "obs_log_field" must hold a key of 16 to 1023 bytes/



=== TEST 29: nginx -t: a key under 16 bytes
--- config
    obs_log_field user $arg_a hmac=$TEST_NGINX_FIELDS/short.key;
--- must_die
--- error_log eval
qr/key file "[^"]*short.key" in "obs_log_field" must hold a key of 16 to 1023 bytes/



=== TEST 30: nginx -t: obs_log_field takes a name and a value
--- config
    obs_log_field lonely;
--- must_die
--- error_log
invalid number of arguments in "obs_log_field" directive
