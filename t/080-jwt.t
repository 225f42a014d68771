# vim:set ft= ts=4 sw=4 et fdm=marker:
# ngx_http_obs_jwt_module: a tenant taken from a verified JWT.  Keys and
# tokens come from an independent implementation (PyJWT and pyca/cryptography,
# t/jwt/fixtures.py), made afresh for every run.

use lib 't/helpers';
use ObsSink;
use ObsSpec;
use Test::Nginx::Socket 'no_plan';

use File::Copy qw(copy);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(sleep);

our (%T, $Dir);

BEGIN {
    $Dir = tempdir("obs-jwt-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $json = `/usr/bin/python3 t/jwt/fixtures.py $Dir`;
    die "t/jwt/fixtures.py failed" if $? != 0;
    %T = %{ JSON::PP::decode_json($json) };
    $ENV{TEST_NGINX_JWT} = $Dir;
}

no_shuffle();

our $HttpConfig = <<'_EOC_';
    large_client_header_buffers 4 32k;
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
    obs_jwt_issuer https://issuer.example;
    obs_jwt_audience api;
_EOC_

# Most blocks judge tokens in one of two locations, written here once:
#
#   --- jwt_answer: FMT      /q (the token from ?token=) and /t (from where
#                            obs_jwt looks by default) answer "FMT\n";
#   --- jwt_directives       more directives for both, after "obs_jwt on;";
#   --- jwt_token: VAR       /q reads the token from VAR, not ?token=;
#   --- verdicts             one request a row, "[/path] token expected":
#                            GET /path?token=<the fixture> (path /q unless
#                            given) must answer the expected line.
#   --- auth                 the directives of an auth_request location,
#                            "location = /auth { internal; ... }", that
#                            /ar/ asks ("echo passed" when it may) unless
#                            the block has its own /ar/.
#
# A block's own --- config comes first, its own http_config replaces
# $HttpConfig.
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $HttpConfig)
        unless defined $block->http_config;

    if (defined(my $answer = $block->jwt_answer)) {
        chomp $answer;
        my $more = indent($block->jwt_directives);
        my $token = $block->jwt_token // '$arg_token';
        chomp $token;
        $block->set_value("config", ($block->config // '') . <<"_EOC_");
    location /q {
        obs_jwt on;
$more        obs_jwt_token $token;
        return 200 "$answer\\n";
    }
    location /t {
        obs_jwt on;
$more        return 200 "$answer\\n";
    }
_EOC_
    }

    if (defined(my $auth = $block->auth)) {
        my $config = $block->config // '';
        $config .= <<'_EOC_' unless $config =~ m{location /ar/ };
    location /ar/ {
        auth_request /auth;
        echo passed;
    }
_EOC_
        $block->set_value("config", $config . "    location = /auth {\n"
                          . "        internal;\n" . indent($auth) . "    }\n");
    }

    if (defined(my $rows = $block->verdicts)) {
        my (@requests, @lines);
        for (grep { /\S/ } split /\n/, $rows) {
            my ($path, $token, $line) = /^\s*(?:(\/\S*)\s+)?(\S+)\s+(.*?)\s*$/
                or die $block->name . ": a verdict row is \"[/path] token line\"";
            die $block->name . ": no fixture $token" unless exists $T{$token};
            push @requests, ($path // '/q') . "?token=$T{$token}";
            push @lines, "$line\n";
        }
        $block->set_value("request", [ map { "GET $_" } @requests ]);
        $block->set_value("response_body", \@lines);
    }
});

# iss and aud of a type the RFC does not allow: malformed, whether or not
# the policy asks for an issuer or an audience (verdict rows)
our $WrongTypes = <<'_EOR_';
iss_array    malformed
iss_number   malformed
iss_object   malformed
aud_number   malformed
aud_mixed    malformed
aud_nested   malformed
aud_object   malformed
_EOR_

# directives one a line, indented to sit in a location
sub indent {
    my $d = shift // '';
    $d =~ s/^[ \t]*(.+?)[ \t]*$/        $1/mg;
    return $d;
}

# A location that judges the token in X-Token and, when it is valid, sends
# the request on to /req/, where obs_jwt require reads Authorization, then
# to a backend that shows the header named.
sub hop_config {
    my $shown = shift;
    return <<"_EOC_";
    location /hop/ {
        obs_jwt on;
        obs_jwt_token \$http_x_token;
        if (\$obs_jwt_status = valid) {
            rewrite ^/hop/(.*)\$ /req/\$1 last;
        }
        return 403;
    }
    location /req/ {
        obs_jwt require;
        proxy_pass http://be/backend/;
    }
    location /backend/ {
        return 200 "backend got $shown\\n";
    }
_EOC_
}

# "GET /q?token=<token>" for each named fixture, and the lines expected
sub tok { [ map { "GET /q?token=$T{$_}" } @_ ] }
sub lines { [ map { "$_\n" } @_ ] }

# Every directive that shapes a verdict, across every kind of internal
# redirect: location A judges the token (and keeps its verdict in $s), then
# sends the request to location B, whose settings differ from A's in that
# directive alone; B must judge again.  The Authorization header carries a
# forged token, ?token= a valid one.  Each row: A's settings, B's settings,
# the token, what B answers ("A's status, B's status [B's user]").
my $Arg = 'obs_jwt_token $arg_token;';
my @Rows = (
    [token => $Arg, '', 'RS256', 'valid bad_signature []'],
    [token_back => '', $Arg, 'RS256', 'bad_signature valid [alice]'],
    [keys => $Arg, "$Arg obs_jwt_keys \$TEST_NGINX_JWT/jwks2.json;", 'RS256',
     'valid unknown_key []'],
    [keys_back => "$Arg obs_jwt_keys \$TEST_NGINX_JWT/jwks2.json;", $Arg,
     'RS256', 'unknown_key valid [alice]'],
    [algorithms => $Arg, "$Arg obs_jwt_algorithms ES256;", 'RS256',
     'valid alg_not_allowed []'],
    [algorithms_back => "$Arg obs_jwt_algorithms ES256;", $Arg, 'RS256',
     'alg_not_allowed valid [alice]'],
    [issuer => $Arg, "$Arg obs_jwt_issuer https://other.example;", 'RS256',
     'valid bad_issuer []'],
    [issuer_back => "$Arg obs_jwt_issuer https://other.example;", $Arg,
     'RS256', 'bad_issuer valid [alice]'],
    [audience => $Arg, "$Arg obs_jwt_audience other;", 'RS256',
     'valid bad_audience []'],
    [audience_back => "$Arg obs_jwt_audience other;", $Arg, 'RS256',
     'bad_audience valid [alice]'],
    [leeway => "$Arg obs_jwt_leeway 1h;", "$Arg obs_jwt_leeway 10s;",
     'expired_30m', 'valid expired []'],
    [leeway_back => "$Arg obs_jwt_leeway 10s;", "$Arg obs_jwt_leeway 1h;",
     'expired_30m', 'expired valid [alice]'],
    [tenant_claim => $Arg, "$Arg obs_jwt_tenant_claim org;", 'RS256',
     'valid missing_claim []'],
    [tenant_claim_back => "$Arg obs_jwt_tenant_claim org;", $Arg, 'RS256',
     'missing_claim valid [alice]'],
    [user_claim => $Arg, "$Arg obs_jwt_user_claim tenant_id;", 'RS256',
     'valid valid [acme]'],
    [user_claim_back => "$Arg obs_jwt_user_claim tenant_id;", $Arg, 'RS256',
     'valid valid [alice]'],
);

# how A hands the request to B (ROW: the row's name), the token kept
my @Kinds = (
    [rewrite => 'rewrite ^ /to/ROW/x last;'],
    [error_page => 'error_page 418 = /to/ROW/x?$args; return 418;'],
    [named => 'error_page 418 = @ROW; return 418;'],
    [try_files => 'try_files /nonexistent /to/ROW/x?$args;'],
    [accel => 'proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/xa/ROW/;'],
    [accel_named =>
     'proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/xa_named/ROW/;'],
);

sub matrix_config {
    my $c = <<'_EOC_';
    location ~ ^/xa/([^/]+)/ {
        add_header X-Accel-Redirect /to/$1/x?$args;
        return 200 "";
    }
    location ~ ^/xa_named/([^/]+)/ {
        add_header X-Accel-Redirect @$1;
        return 200 "";
    }
_EOC_
    for my $row (@Rows) {
        my ($name, $a, $b) = @$row;
        my $body = "obs_jwt on; $b echo \"\$s \$obs_jwt_status [\$obs_jwt_user]\";";
        $c .= "    location /to/$name/ { $body }\n"
            . "    location \@$name { $body }\n";
        for my $kind (@Kinds) {
            (my $go = $kind->[1]) =~ s/ROW/$name/g;
            $c .= "    location /$kind->[0]/$name/ { obs_jwt on; $a "
                . "set \$s \$obs_jwt_status; $go }\n";
        }
    }
    return $c;
}

sub matrix_requests {
    return [ map { my $k = $_->[0];
                   map { "GET /$k/$_->[0]/x?token=$T{$_->[3]}" } @Rows }
             @Kinds ];
}

sub matrix_lines {
    return [ map { map { "$_->[4]\n" } @Rows } @Kinds ];
}

# Key files nginx -t refuses: [what is wrong, the file (t/jwt/fixtures.py
# writes it), what the message says after the file's name (a regex)]
my @BadKeyFiles = (
    [ 'a missing key file',
      'nonexistent.json', 'cannot open' ],
    [ 'a JWKS that is not JSON',
      'bad-syntax.json', 'invalid JSON' ],
    [ 'a JWKS without keys',
      'bad-empty.json', 'no signature verification keys' ],
    [ 'an RSA key under 2048 bits',
      'bad-small-rsa.pem', 'PEM block 1: an RSA key needs at least 2048 bits' ],
    [ 'a private key is refused',
      'bad-private.pem', 'PEM block 1: a private key' ],
    [ 'an HMAC key shorter than 32 bytes',
      'bad-short-hmac.json', 'key 0: an HMAC key needs at least 32 bytes' ],
    [ 'an unsupported curve',
      'bad-p521.json', 'key 0: unsupported EC curve "P-521"' ],
    [ 'two keys with one kid',
      'bad-dup-kid.json', 'kid "same" is used twice' ],
    [ 'neither JWKS nor PEM',
      'bad-garbage.pem', 'neither a JWKS nor a PEM public key' ],
    [ 'a JWK member with unused low bits set (RSA n)',
      'bad-nc-n.json', 'key 0: "n" is not base64url' ],
    [ 'the same in an Ed25519 x',
      'bad-nc-x.json', 'key 0: "x" is not base64url' ],
    [ 'the same in an EC y',
      'bad-nc-y.json', 'key 0: "y" is not base64url' ],
    [ 'the same in an HMAC k',
      'bad-nc-k.json', 'key 0: "k" is not base64url' ],
);

sub bad_key_file {
    my ($what, $file, $error) = @{ $_[0] };
    return <<"_EOB_";
=== TEST 0: nginx -t: $what
--- http_config
    obs_jwt_keys \$TEST_NGINX_JWT/$file;
--- config
--- must_die
--- error_log eval
qr/obs_jwt_keys "[^"]*\Q$file\E": $error/



_EOB_
}

spec_string(ObsSpec::expand(\*DATA,
    BAD_KEY_FILES => [ map { bad_key_file($_) } @BadKeyFiles ]));

run_tests();

reload_picks_up_new_keys();
cache_honours_exp();
default_leeway();


# --- outside the blocks: a running nginx that is reloaded or waited on ----

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die $!;
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub get {
    my ($port, $path, $token) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or return '';
    print $s "GET $path HTTP/1.0\r\nHost: x\r\n"
             . ($token ? "Authorization: Bearer $token\r\n" : '') . "\r\n";
    local $/;
    my $r = <$s>;
    close $s;
    my (undef, $body) = split /\r\n\r\n/, $r // '', 2;
    return $body // '';
}

sub start_nginx {
    my ($prefix, $port, $loc) = @_;
    mkdir "$prefix/logs";
    my $modules = join '', map { "load_module $_;\n" }
                  grep { /obs/ } split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
    my $user = $> == 0 ? "user root;\n" : '';
    open my $fh, '>', "$prefix/nginx.conf" or die $!;
    print $fh <<"_EOC_";
$modules$user
worker_processes 1;
error_log logs/error.log debug;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$port;
        location /t {
            $loc
            return 200 "\$obs_jwt_status \$obs_jwt_tenant\\n";
        }
    }
}
_EOC_
    close $fh;
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
    system($bin, '-p', "$prefix/", '-c', 'nginx.conf') == 0
        or die "nginx did not start";
    for (1 .. 100) {
        last if get($port, '/t') ne '';
        sleep 0.05;
    }
    return $bin;
}

# SIGHUP to the master, as "nginx -s reload" would send (which itself reads
# the configuration first and so would refuse to send it for a bad file)
sub reload {
    my $prefix = shift;
    my $pid = slurp("$prefix/logs/nginx.pid");
    chomp $pid;
    kill 'HUP', $pid or die "no nginx master";
}

# by signal: "nginx -s quit" would read the configuration first, and a bad
# key file in it would leave nginx running (holding the test lock)
sub stop_nginx {
    my ($bin, $prefix) = @_;
    my $pid = slurp("$prefix/logs/nginx.pid");
    chomp $pid;
    return unless $pid;
    kill 'QUIT', $pid;
    for (1 .. 200) {
        last unless -e "$prefix/logs/nginx.pid" && kill 0, $pid;
        sleep 0.025;
    }
    kill 'KILL', $pid if -e "$prefix/logs/nginx.pid";
}

sub slurp {
    open my $fh, '<', shift or return '';
    local $/;
    return <$fh>;
}

sub reload_picks_up_new_keys {
    my $prefix = tempdir("obs-jwt-reload-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $port = free_port();
    copy("$Dir/jwks.json", "$prefix/keys.json") or die $!;

    my $bin = start_nginx($prefix, $port,
                          "obs_jwt on; obs_jwt_keys $prefix/keys.json;");

    is(get($port, '/t', $T{rsa2}), "unknown_key unverified\n",
       "reload: a key not yet in the file is unknown");

    copy("$Dir/jwks2.json", "$prefix/keys.json") or die $!;
    reload($prefix);

    my $body = '';
    for (1 .. 100) {
        $body = get($port, '/t', $T{rsa2});
        last if $body eq "valid acme\n";
        sleep 0.05;
    }
    is($body, "valid acme\n", "reload: the new file's key verifies");

    # a bad file is refused on reload; the running keys stay
    open my $fh, '>', "$prefix/keys.json" or die $!;
    print $fh "{ not json";
    close $fh;
    reload($prefix);

    for (1 .. 100) {
        last if slurp("$prefix/logs/error.log") =~ /obs_jwt_keys .*keys.json/;
        sleep 0.05;
    }

    is(get($port, '/t', $T{rsa2}), "valid acme\n",
       "reload: a bad key file leaves the running keys in place");
    like(slurp("$prefix/logs/error.log"),
         qr/obs_jwt_keys "[^"]*keys.json": invalid JSON/,
         "reload: the bad file is named with its directive");

    stop_nginx($bin, $prefix);
}

# A cached token is still checked against its exp on every hit.
sub cache_honours_exp {
    my $prefix = tempdir("obs-jwt-exp-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $port = free_port();
    my $token = `/usr/bin/python3 t/jwt/fixtures.py $Dir token 2`;
    chomp $token;

    my $bin = start_nginx($prefix, $port,
                          "obs_jwt on; obs_jwt_keys $Dir/jwks.json; "
                          . "obs_jwt_leeway 0;");

    is(get($port, '/t', $token), "valid acme\n", "cache: fresh token valid");
    is(get($port, '/t', $token), "valid acme\n", "cache: again, valid");
    like(slurp("$prefix/logs/error.log"), qr/obs_jwt: token found in the cache/,
         "cache: the second request was answered by the cache");

    sleep 3;
    is(get($port, '/t', $token), "expired unverified\n",
       "cache: an entry past its exp is not used");

    stop_nginx($bin, $prefix);
}

# The default leeway (60 s), with tokens made just before they are sent.
sub default_leeway {
    my $prefix = tempdir("obs-jwt-leeway-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $port = free_port();
    my $bin = start_nginx($prefix, $port,
                          "obs_jwt on; obs_jwt_keys $Dir/jwks.json;");

    for my $case ([-20, "valid acme\n"], [-120, "expired unverified\n"]) {
        my $token = `/usr/bin/python3 t/jwt/fixtures.py $Dir token $case->[0]`;
        chomp $token;
        is(get($port, '/t', $token), $case->[1],
           "default leeway: exp $case->[0] s from now");
    }

    stop_nginx($bin, $prefix);
}

__DATA__

=== TEST 1: every algorithm verifies (token from a variable)
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant $obs_jwt_user
--- verdicts
HS256   valid acme alice
HS384   valid acme alice
HS512   valid acme alice
RS256   valid acme alice
RS384   valid acme alice
RS512   valid acme alice
ES256   valid acme alice
ES384   valid acme alice
EdDSA   valid acme alice




=== TEST 2: Authorization: Bearer is the default source
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant $obs_jwt_user
--- more_headers eval
"Authorization: Bearer $::T{ES256}"
--- request
GET /t
--- response_body
valid acme alice




=== TEST 3: the scheme is case-insensitive, spaces after it are skipped
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- more_headers eval
"Authorization: bEARER    $::T{EdDSA}"
--- request
GET /t
--- response_body
valid acme




=== TEST 4: another scheme is no bearer token: missing, never the claim
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant [$obs_jwt_user]
--- more_headers
Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l
--- request
GET /t
--- response_body
missing unverified []




=== TEST 5: no token at all
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- request
GET /t
--- response_body
missing unverified




=== TEST 6: token from a named header
--- config
    location /t {
        obs_jwt on;
        obs_jwt_token $http_x_token;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- more_headers eval
"X-Token: $::T{RS384}\nAuthorization: Bearer $::T{wrong_key}"
--- request
GET /t
--- response_body
valid acme



=== TEST 7: token from a cookie
--- config
    location /t {
        obs_jwt on;
        obs_jwt_token $cookie_session;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- more_headers eval
"Cookie: theme=dark; session=$::T{HS512}; lang=en"
--- request
GET /t
--- response_body
valid acme



=== TEST 8: wrong key, tampered payload, kid selection
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- verdicts
wrong_key     bad_signature unverified
tampered      bad_signature unverified
unknown_kid   unknown_key unverified
ec_kid_rsa    alg_not_allowed unverified
no_kid        valid acme
ec_no_kid     valid acme




=== TEST 9: alg confusion: HS256 keyed with the RSA public key
--- config
    location /pem {
        obs_jwt on;
        obs_jwt_keys $TEST_NGINX_JWT/rsa1.pem kid=rsa1;
        obs_jwt_token $arg_token;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- verdicts
/pem  alg_confusion          alg_not_allowed unverified
/pem  alg_confusion_no_kid   alg_not_allowed unverified
/pem  RS256                  valid acme
      alg_confusion          alg_not_allowed unverified
      alg_confusion_no_kid   bad_signature unverified




=== TEST 10: "none" is never accepted
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- verdicts
alg_none         alg_not_allowed unverified
alg_none_upper   alg_not_allowed unverified




=== TEST 11: "none" cannot be allowed
--- config
    location /t {
        obs_jwt on;
        obs_jwt_algorithms RS256 none;
    }
--- must_die
--- error_log
unsupported algorithm "none"




=== TEST 12: the allow-list
--- jwt_answer: $obs_jwt_status
--- jwt_directives
obs_jwt_algorithms RS256 EdDSA;
--- verdicts
RS256   valid
EdDSA   valid
ES256   alg_not_allowed
HS256   alg_not_allowed
RS512   alg_not_allowed




=== TEST 13: a key's own "alg" pins it to that algorithm
--- jwt_answer: $obs_jwt_status
--- jwt_directives
obs_jwt_keys $TEST_NGINX_JWT/jwks-pinned.json;
--- verdicts
RS256   alg_not_allowed
RS512   valid




=== TEST 14: exp and nbf, with the default leeway of 60 s
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- verdicts
expired       expired unverified
expired_30m   expired unverified
nbf_future    not_yet_valid unverified
nbf_30m       not_yet_valid unverified
no_exp        valid acme
exp_string    malformed unverified




=== TEST 15: a larger and a smaller leeway
--- config
    location /hour {
        obs_jwt on;
        obs_jwt_leeway 1h;
        obs_jwt_token $arg_token;
        return 200 "$obs_jwt_status\n";
    }
--- jwt_answer: $obs_jwt_status
--- jwt_directives
obs_jwt_leeway 10s;
--- verdicts
/hour  expired_30m   valid
/hour  nbf_30m       valid
/hour  expired       expired
       expired_30m   expired
       nbf_30m       not_yet_valid
       RS256         valid




=== TEST 16: iss and aud (a string or an array)
--- jwt_answer: $obs_jwt_status
--- verdicts
bad_iss     bad_issuer
no_iss      bad_issuer
aud_array   valid
bad_aud     bad_audience
no_aud      bad_audience




=== TEST 17: several accepted issuers and audiences; none configured
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
--- config
    location /any {
        obs_jwt on;
        obs_jwt_token $arg_token;
        return 200 "$obs_jwt_status\n";
    }
--- jwt_answer: $obs_jwt_status
--- jwt_directives
obs_jwt_issuer https://evil.example https://issuer.example;
obs_jwt_audience more api;
--- verdicts
       bad_iss   valid
       bad_aud   valid
/any   no_iss    valid
/any   no_aud    valid




=== TEST 18: which claims name the tenant and the user
--- config
    location /org {
        obs_jwt on;
        obs_jwt_tenant_claim org;
        obs_jwt_user_claim off;
        obs_jwt_token $arg_token;
        return 200 "$obs_jwt_status $obs_jwt_tenant [$obs_jwt_user]\n";
    }
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant [$obs_jwt_user]
--- verdicts
/org   org          valid globex []
/org   RS256        missing_claim unverified []
       tenant_int   valid 42 [alice]
       no_tenant    missing_claim unverified []
       org          valid acme []




=== TEST 19: malformed and hostile tokens
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- verdicts
garbage           malformed unverified
two_parts         malformed unverified
five_parts        malformed unverified
bad_base64        malformed unverified
header_not_json   malformed unverified
deep_header       malformed unverified
deep_payload      malformed unverified
huge              malformed unverified
crit              malformed unverified
dup_claim         malformed unverified
--- no_error_log
[alert]
[crit]




=== TEST 20: require: no token -> 401 with a bare challenge
--- config
    location /t {
        obs_jwt require realm=api;
        echo $obs_jwt_tenant;
    }
--- request
GET /t
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api"



=== TEST 21: require: a bad token -> 401 invalid_token, with the reason
--- config
    location /t {
        obs_jwt require realm=api;
        echo $obs_jwt_tenant;
    }
--- more_headers eval
"Authorization: Bearer $::T{expired}"
--- request
GET /t
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="expired"



=== TEST 22: require without a realm; a valid token passes
--- config
    location /q {
        obs_jwt require;
        obs_jwt_token $arg_token;
        add_header X-Status $obs_jwt_status always;
        echo $obs_jwt_tenant;
    }
--- request eval
main::tok(qw(wrong_key RS256))
--- error_code eval
[401, 200]
--- response_headers eval
["WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"bad_signature\"\nX-Status: bad_signature",
 "!WWW-Authenticate\nX-Status: valid"]
--- response_body_like eval
["401", "^acme\\n\\z"]



=== TEST 23: "on" never rejects a request
--- config
    location /t {
        obs_jwt on;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- more_headers eval
"Authorization: Bearer $::T{tampered}"
--- request
GET /t
--- response_body
bad_signature unverified



=== TEST 24: "satisfy any" lets an allowed address in without a token
--- config
    location /t {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        obs_jwt require;
        echo $obs_jwt_status;
    }
--- request
GET /t
--- response_body
missing



=== TEST 25: obs_tenant takes the verified claim, never the client's header
--- config
    location /q {
        obs on;
        obs_jwt on;
        obs_jwt_token $arg_token;
        obs_tenant $obs_jwt_tenant;
        return 200 "$obs_tenant\n";
    }
--- more_headers
X-Tenant-ID: globex
--- request eval
main::tok(qw(RS256 tampered))
--- response_body eval
main::lines(qw(acme unverified))



=== TEST 26: off: the variables say so, nothing is verified
--- config
    location /t {
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- more_headers eval
"Authorization: Bearer $::T{RS256}"
--- request
GET /t
--- response_body
off unverified
--- no_error_log
obs_jwt: token verified



=== TEST 27: a repeated token is answered by the cache (hits counted)
--- http_config
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=1s;
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
--- config
    location /t {
        obs on;
        obs_jwt on;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
    location /sink/ {
        obs off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/;
    }
--- more_headers eval
"Authorization: Bearer $::T{RS256}"
--- request eval
["GET /sink/reset", "GET /t", "GET /t", "GET /t", "GET /sink/headers?wait=2"]
--- response_body_like eval
["reset", "valid acme", "valid acme", "valid acme",
 '(?=[\s\S]*"jwtValid": "3")(?=[\s\S]*"jwtCacheHits": "2")']



=== TEST 28: obs_jwt_cache off
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
    obs_jwt_cache off;
--- config
    location /t {
        obs_jwt on;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- more_headers eval
"Authorization: Bearer $::T{RS256}"
--- request eval
["GET /t", "GET /t"]
--- response_body eval
main::lines("valid acme", "valid acme")
--- no_error_log
obs_jwt: token found in the cache



=== TEST 29: a cache entry serves only the policy that verified it
--- config
    location /lax {
        obs_jwt on;
        obs_jwt_audience other;
        return 200 "$obs_jwt_status\n";
    }
    location /strict {
        obs_jwt on;
        return 200 "$obs_jwt_status\n";
    }
--- more_headers eval
"Authorization: Bearer $::T{bad_aud}"
--- request eval
["GET /lax", "GET /lax", "GET /strict"]
--- response_body eval
main::lines(qw(valid valid bad_audience))



=== TEST 30: an internal redirect keeps the verdict (verified once)
--- config
    location /t {
        obs_jwt on;
        set $first $obs_jwt_status;
        rewrite ^ /u last;
    }
    location /u {
        obs_jwt on;
        return 200 "$obs_jwt_status $obs_jwt_tenant\n";
    }
--- more_headers eval
"Authorization: Bearer $::T{ES384}"
--- request
GET /t
--- response_body
valid acme



=== TEST 31: an HTTP/0.9 request under require: 401, no crash
--- config
    location /t {
        obs_jwt require;
        echo $obs_jwt_tenant;
    }
--- raw_request eval
"GET /t\r\n"
--- http09
--- response_body_like: 401
--- no_error_log
[alert]



=== TEST 32: the counts ride the batch header to the sidecar
--- http_config
    obs_sidecar unix:$TEST_NGINX_SINK_SOCK flush=1s;
    obs_tenant $obs_jwt_tenant;
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
--- config
    location /q {
        obs on;
        obs_jwt on;
        obs_jwt_token $arg_token;
        return 200 "$obs_jwt_status\n";
    }
    location /sink/ {
        obs off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/;
    }
--- request eval
["GET /sink/reset", "GET /q?token=$::T{RS256}", "GET /q?token=$::T{RS256}",
 "GET /q?token=$::T{expired}", "GET /q", "GET /q?token=$::T{garbage}",
 "GET /sink/headers?wait=2"]
--- response_body_like eval
["reset", "valid", "valid", "expired", "missing", "malformed",
 CORE::join('', map { "(?=[\\s\\S]*$_)" }
    '"jwtValid": "2"', '"jwtCacheHits": "1"', '"jwtExpired": "1"',
    '"jwtMissing": "1"', '"jwtMalformed": "1"')]



=== TEST 33: nginx -t: obs_jwt without keys
--- http_config
--- config
    location /t {
        obs_jwt on;
    }
--- must_die
--- error_log
"obs_jwt" needs "obs_jwt_keys"



@BAD_KEY_FILES@



=== TEST 47: nginx -t: bad values of the other directives
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
    obs_jwt_cache 0;
--- config
--- must_die
--- error_log
invalid cache size "0"



=== TEST 48: nginx -t: a leeway over a day
--- config
    location /t {
        obs_jwt_leeway 2d;
    }
--- must_die
--- error_log
"obs_jwt_leeway" directive is more than a day



=== TEST 49: nginx -t: a realm that would break the quoted-string
--- config
    location /t {
        obs_jwt require realm=a"b;
    }
--- must_die
--- error_log
invalid realm



=== TEST 50: nginx -t: kid= on a JWKS
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json kid=x;
--- config
--- must_die
--- error_log
kid= is for PEM files



=== TEST 51: PEM files of every key type, each with its kid
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/ec256.pem kid=ec256;
    obs_jwt_keys $TEST_NGINX_JWT/ec384.pem kid=ec384;
    obs_jwt_keys $TEST_NGINX_JWT/ed.pem kid=ed;
    obs_jwt_keys $TEST_NGINX_JWT/rsa1.pem kid=rsa1;
--- jwt_answer: $obs_jwt_status
--- verdicts
ES256   valid
ES384   valid
EdDSA   valid
RS512   valid
HS256   unknown_key




=== TEST 52: a key without a kid answers tokens with any kid
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/rsa1.pem;
--- jwt_answer: $obs_jwt_status
--- verdicts
RS256         valid
unknown_kid   valid
no_kid        valid
wrong_key     bad_signature
ES256         alg_not_allowed




=== TEST 53: require after a rewrite judges the token it reads (issue 19)
--- http_config eval
$::HttpConfig . 'upstream be { server 127.0.0.1:$TEST_NGINX_SERVER_PORT; }'
--- config eval
main::hop_config('$http_authorization')
--- more_headers eval
"X-Token: $::T{RS256}\nAuthorization: Bearer $::T{forged}"
--- request eval
["GET /hop/a", "GET /req/a"]
--- error_code eval
[401, 401]
--- response_headers eval
[qq{WWW-Authenticate: Bearer error="invalid_token", error_description="bad_signature"},
 qq{WWW-Authenticate: Bearer error="invalid_token", error_description="bad_signature"}]
--- response_body_unlike eval
["backend got", "backend got"]



=== TEST 54: the same token from both sources is judged once
--- http_config eval
$::HttpConfig . 'upstream be { server 127.0.0.1:$TEST_NGINX_SERVER_PORT; }'
--- config eval
main::hop_config('$http_x_token')
--- more_headers eval
"X-Token: $::T{ES256}\nAuthorization: Bearer $::T{ES256}"
--- request
GET /hop/a
--- response_body eval
"backend got $::T{ES256}\n"
--- error_log
obs_jwt: token verified: valid
--- no_error_log
obs_jwt: token found in the cache



=== TEST 55: every directive that shapes a verdict, across every redirect
--- config eval
main::matrix_config()
--- more_headers eval
"Authorization: Bearer $::T{forged}"
--- request eval
main::matrix_requests()
--- response_body eval
main::matrix_lines()



=== TEST 56: require in an auth_request subrequest (no access phase there)
--- auth
obs_jwt require realm=api;
echo ok;
--- request
GET /ar/x
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api"
--- response_body_unlike: passed



=== TEST 57: require in an auth_request subrequest: a forged token
--- config
    location /ar/ {
        obs_jwt on;
        obs_jwt_token $http_x_token;
        set $s $obs_jwt_status;
        auth_request /auth;
        echo "passed $s";
    }
--- auth
obs_jwt require;
echo ok;
--- more_headers eval
"X-Token: $::T{RS256}\nAuthorization: Bearer $::T{forged}"
--- request
GET /ar/x
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer error="invalid_token", error_description="bad_signature"
--- response_body_unlike: passed



=== TEST 58: require in an auth_request subrequest: a valid token passes
--- config
    location /ar/ {
        auth_request /auth;
        echo "passed $obs_jwt_status";
    }
--- auth
obs_jwt require;
echo ok;
--- more_headers eval
"Authorization: Bearer $::T{RS256}"
--- request
GET /ar/x
--- response_body
passed off



=== TEST 59: a subrequest and its parent each judge the token they read
--- config
    location /main/ {
        obs_jwt on;
        echo "main $obs_jwt_status $obs_jwt_tenant";
        echo_location /sub/x;
        echo "main again $obs_jwt_status $obs_jwt_tenant";
    }
    location /sub/ {
        obs_jwt on;
        obs_jwt_token $http_x_token;
        echo "sub $obs_jwt_status $obs_jwt_tenant";
    }
--- more_headers eval
"X-Token: $::T{forged}\nAuthorization: Bearer $::T{RS256}"
--- request
GET /main/x
--- response_body
main valid acme
sub bad_signature unverified
main again valid acme



=== TEST 60: the access log has the verdict of the location that answered
--- http_config eval
$::HttpConfig . 'log_format jwt "jwt-log $obs_jwt_status $obs_jwt_tenant";'
--- config
    location /hop/ {
        obs_jwt on;
        obs_jwt_token $http_x_token;
        set $s $obs_jwt_status;
        rewrite ^ /end/ last;
    }
    location /end/ {
        obs_jwt on;
        access_log logs/error.log jwt;
        echo "$s";
    }
--- more_headers eval
"X-Token: $::T{RS256}\nAuthorization: Bearer $::T{forged}"
--- request
GET /hop/x
--- response_body
valid
--- error_log
jwt-log bad_signature unverified
--- no_error_log
jwt-log valid



=== TEST 61: base64url must be canonical: unused low bits set
--- jwt_answer: $obs_jwt_status
--- verdicts
HS256          valid
nc_sig_hs1     malformed
nc_sig_hs2     malformed
nc_sig_hs3     malformed
nc_sig_RS256   malformed
nc_sig_ES256   malformed
nc_sig_EdDSA   malformed
odd_json       valid
nc_header      malformed
nc_payload     malformed




=== TEST 62: registered claims of the wrong type are malformed
--- jwt_answer: $obs_jwt_status
--- verdicts eval
$::WrongTypes . <<'_EOR_'
aud_empty    bad_audience
iat_string   malformed
nbf_string   malformed
exp_bool     malformed
exp_float    valid
_EOR_




=== TEST 63: the same, where no issuer or audience is asked for
--- http_config
    obs_jwt_keys $TEST_NGINX_JWT/jwks.json;
--- jwt_answer: $obs_jwt_status
--- verdicts eval
$::WrongTypes . <<'_EOR_'
aud_empty    valid
iat_string   malformed
RS256        valid
_EOR_




=== TEST 64: the tenant and user claims: a string or an integer, 256 bytes
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant [$obs_jwt_user]
--- request eval
main::tok(qw(tenant_array tenant_float tenant_bool tenant_empty tenant_long
           tenant_max sub_int sub_array sub_object sub_long sub_empty))
--- response_body eval
main::lines("missing_claim unverified []", "missing_claim unverified []",
            "missing_claim unverified []", "missing_claim unverified []",
            "missing_claim unverified []",
            "valid " . ("t" x 256) . " [alice]", "valid acme [7]",
            "missing_claim unverified []", "missing_claim unverified []",
            "missing_claim unverified []", "valid acme []")



=== TEST 65: a cookie that comes twice: nginx reads the first, a backend may read another
--- config
    location /c {
        obs_jwt require;
        obs_jwt_token $cookie_session;
        echo "$obs_jwt_status $obs_jwt_tenant";
    }
--- more_headers eval
"Cookie: session=$::T{RS256}; theme=dark; session=$::T{forged}"
--- request
GET /c
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer error="invalid_token", error_description="malformed"



=== TEST 66: the same across two Cookie headers, in another case
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- jwt_token: $cookie_session
--- more_headers eval
"Cookie: theme=dark; session=$::T{RS256}\nCookie: lang=en,SESSION =$::T{forged}"
--- request
GET /q
--- response_body
malformed unverified



=== TEST 67: other cookies that only look alike are no repeat
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- jwt_token: $cookie_session
--- more_headers eval
"Cookie: my_session=x; session_b=y; session=$::T{RS256}; a=session=z"
--- request
GET /q
--- response_body
valid acme



=== TEST 68: a header that comes twice
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- jwt_token: $http_x_token
--- more_headers eval
"X-Token: $::T{RS256}\nx-token: $::T{forged}"
--- request
GET /q
--- response_body
malformed unverified



=== TEST 69: an argument that comes twice, escaped or not
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- request eval
["GET /q?token=$::T{RS256}&token=$::T{forged}",
 "GET /q?token=$::T{RS256}&to%6Ben=$::T{forged}",
 "GET /q?token=$::T{RS256};TOKEN=$::T{forged}",
 "GET /q?xtoken=1&tokens=2&token=$::T{RS256}&a=token=3"]
--- response_body eval
main::lines("malformed unverified", "malformed unverified",
            "malformed unverified", "valid acme")



=== TEST 70: a token in a header the module also reads (X-Request-Id)
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- jwt_token: $http_x_request_id
--- more_headers eval
"X-Request-Id: $::T{RS256}"
--- request
GET /q
--- response_body
valid acme



=== TEST 71: require in an auth_request location that only returns 204
The rewrite phase ends such a subrequest before its precontent phase:
require is checked when that phase begins, before the location's return.
--- auth
obs_jwt require;
return 204;
--- more_headers eval
"Authorization: Bearer $::T{forged}"
--- request
GET /ar/x
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer error="invalid_token", error_description="bad_signature"
--- response_body_unlike: passed



=== TEST 72: the same with a rewrite to a location without require
--- config
    location = /open {
        internal;
        return 204;
    }
--- auth
obs_jwt require;
rewrite ^ /open last;
--- request
GET /ar/x
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer
--- response_body_unlike: passed



=== TEST 73: the same with a valid token passes
--- config
    location = /open {
        internal;
        obs_jwt require;
        return 204;
    }
--- auth
obs_jwt require;
rewrite ^ /open last;
--- more_headers eval
"Authorization: Bearer $::T{RS256}"
--- request
GET /ar/x
--- response_body
passed
--- no_error_log
token not accepted



=== TEST 74: a cookie that comes twice behind a blank a trim() takes off
Python's http.cookies (Tornado), Django and Java read "\tsession" as
"session", and some of them the last one.
--- jwt_answer: $obs_jwt_status $obs_jwt_tenant
--- jwt_token: $cookie_session
--- more_headers eval
"Cookie: session=$::T{RS256};\tsession=$::T{forged};\x0bsession=x;"
. " session\x0c=y;\xa0session=z"
--- request
GET /q
--- response_body
malformed unverified



=== TEST 75: a name PHP reads as another: "." or " " for "_"
--- config
    location /c {
        obs_jwt on;
        obs_jwt_token $cookie_access_token;
        echo "$obs_jwt_status $obs_jwt_tenant";
    }
    location /a {
        obs_jwt on;
        obs_jwt_token $arg_access_token;
        echo "$obs_jwt_status $obs_jwt_tenant";
    }
--- more_headers eval
"Cookie: access.token=$::T{forged}; access_token=$::T{RS256}"
--- request eval
["GET /c",
 "GET /a?access_token=$::T{RS256}&access.token=$::T{forged}",
 "GET /a?access_token=$::T{RS256}&access+token=$::T{forged}",
 "GET /a?access_token=$::T{RS256}&%09access[token=$::T{forged}",
 "GET /a?access_token=$::T{RS256}&accesstoken=1&access__token=2"]
--- response_body eval
main::lines("malformed unverified", "malformed unverified",
            "malformed unverified", "malformed unverified", "valid acme")



=== TEST 76: a tenant or user claim with a control byte is missing_claim
$obs_jwt_user in proxy_set_header would otherwise send "X-Admin: 1" as a
header of its own.
--- config
    location /q {
        obs_jwt on;
        obs_jwt_token $arg_token;
        return 200 "$obs_jwt_status $obs_jwt_tenant [$obs_jwt_user]\n";
    }
--- request eval
main::tok(qw(sub_crlf sub_tab tenant_lf tenant_del sub_utf8))
--- response_body eval
main::lines("missing_claim unverified []", "missing_claim unverified []",
            "missing_claim unverified []", "missing_claim unverified []",
            "valid acme [b\xc3\xb6b \xe2\x98\x83]")



=== TEST 77: ... and never reaches the backend's headers
--- config
    location /p {
        obs_jwt on;
        obs_jwt_token $arg_token;
        proxy_set_header X-User $obs_jwt_user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location = /echo {
        obs_jwt off;
        return 200 "[$http_x_user] [$http_x_admin]\n";
    }
--- request eval
"GET /p?token=$::T{sub_crlf}"
--- response_body
[] []
