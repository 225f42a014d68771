# vim:set ft= ts=4 sw=4 et fdm=marker:
# Every directive in a working configuration, and every misuse failing
# `nginx -t` with a message that names the directive.

use Test::Nginx::Socket 'no_plan';

use lib 't/helpers';
use File::Temp qw(tempdir);
use ObsContract;
use ObsSpec;

our $Framing = ObsContract::framing();

# key files at and past the bounds of proto/obs/v1/framing.h
BEGIN {
    my $dir = tempdir("obs-keys-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $f = ObsContract::framing();
    my %keys = (
        'min.key'  => ('k' x $f->{OBS_KEY_MIN}) . "\n",
        'max.key'  => ('k' x $f->{OBS_KEY_MAX}) . "\n",
        'long.key' => ('k' x ($f->{OBS_KEY_MAX} + 1)) . "\n",
        'nul.key'  => "0123456789abcdef\0tail\n",
    );
    for my $name (keys %keys) {
        open my $fh, '>', "$dir/$name" or die $!;
        print $fh $keys{$name};
        close $fh;
    }
    $ENV{TEST_NGINX_OBS_KEY_DIR} = $dir;
}

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

# Misuse nginx -t refuses, with a message naming the directive: [what,
# where the directives go (http or server), the directives, what the
# error log says]
my @Refused = (
    [ 'obs takes on or off only',
      server => 'obs maybe;',
      'invalid value "maybe" in "obs" directive, it must be "on" or "off"' ],
    [ 'obs_sidecar needs a unix: or udp: address',
      http => 'obs_sidecar tcp:127.0.0.1:9000;',
      'invalid address "tcp:127.0.0.1:9000" in "obs_sidecar" directive, it must be "unix:/path" or "udp:host:port"' ],
    [ 'obs_sidecar unix: without a path',
      http => 'obs_sidecar unix:;',
      'invalid address "unix:" in "obs_sidecar" directive' ],
    [ 'obs_sidecar udp: without a port',
      http => 'obs_sidecar udp:127.0.0.1;',
      'no port in "udp:127.0.0.1" of "obs_sidecar" directive' ],
    [ 'obs_sidecar buffer out of range',
      http => 'obs_sidecar unix:/tmp/x.sock buffer=1k;',
      'invalid buffer size "1k" in "obs_sidecar" directive, it must be between 4k and 16m' ],
    [ 'obs_sidecar buffer that is not a size',
      http => 'obs_sidecar unix:/tmp/x.sock buffer=lots;',
      'invalid buffer size "lots" in "obs_sidecar" directive' ],
    [ 'obs_sidecar flush that is not a time',
      http => 'obs_sidecar unix:/tmp/x.sock flush=soon;',
      'invalid flush time "soon" in "obs_sidecar" directive' ],
    [ 'obs_sidecar flush of zero',
      http => 'obs_sidecar unix:/tmp/x.sock flush=0;',
      'invalid flush time "0" in "obs_sidecar" directive' ],
    [ 'obs_sidecar unknown parameter',
      http => 'obs_sidecar unix:/tmp/x.sock bufer=4k;',
      'invalid parameter "bufer=4k" in "obs_sidecar" directive' ],
    [ 'obs_sidecar twice',
      http => 'obs_sidecar unix:/tmp/x.sock; obs_sidecar unix:/tmp/y.sock;',
      '"obs_sidecar" directive is duplicate' ],
    [ 'obs_sidecar only at http level',
      server => 'obs_sidecar unix:/tmp/x.sock;',
      '"obs_sidecar" directive is not allowed here' ],
    [ 'obs_route not at http level',
      http => 'obs_route /x;',
      '"obs_route" directive is not allowed here' ],
    [ 'obs_route needs one argument',
      server => 'location /t { obs_route; }',
      'invalid number of arguments in "obs_route" directive' ],
    [ 'obs_trace_context with an unknown mode',
      server => 'obs_trace_context forward;',
      'invalid value "forward" in "obs_trace_context" directive, it must be "extract", "inject", "propagate" or "ignore"' ],
    [ 'obs_trace_context twice in one scope',
      server => 'obs_trace_context extract; obs_trace_context inject;',
      '"obs_trace_context" directive is duplicate' ],
    [ 'obs_trace_sample above 1',
      server => 'obs_trace_sample 1.5;',
      'invalid ratio "1.5" in "obs_trace_sample" directive, it must be a number between 0 and 1' ],
    [ 'obs_trace_sample not a number',
      server => 'obs_trace_sample half;',
      'invalid ratio "half" in "obs_trace_sample" directive' ],
    [ 'obs_trace_sample negative',
      server => 'obs_trace_sample -0.1;',
      'invalid ratio "-0.1" in "obs_trace_sample" directive' ],
    [ 'obs_route_auto takes on or off only',
      server => 'obs_route_auto yes;',
      'invalid value "yes" in "obs_route_auto" directive, it must be "on" or "off"' ],
    [ 'obs_upstream_span takes on or off only',
      server => 'obs_upstream_span 1;',
      'invalid value "1" in "obs_upstream_span" directive, it must be "on" or "off"' ],
    [ 'obs_tenant needs one argument',
      server => 'obs_tenant $http_x_tenant_id extra;',
      'invalid number of arguments in "obs_tenant" directive' ],
    [ 'obs_service_name with an unknown variable',
      server => 'obs_service_name $no_such_variable;',
      'unknown "no_such_variable" variable' ],
    [ 'obs_service_name needs one argument',
      server => 'obs_service_name;',
      'invalid number of arguments in "obs_service_name" directive' ],
    [ 'obs_trace_sample twice in one scope',
      server => 'obs_trace_sample 0.5; obs_trace_sample 0.1;',
      '"obs_trace_sample" directive is duplicate' ],
    [ 'obs_sidecar with a host that does not resolve',
      http => 'obs_sidecar udp:no-such-host.invalid:9999;',
      'in "obs_sidecar" directive' ],
);

sub refused {
    my ($what, $where, $directives, $error) = @{ $_[0] };
    my $http = $where eq 'http' ? "--- http_config\n    $directives\n" : '';
    my $server = $where eq 'server' ? "    $directives\n" : '';
    return <<"_EOB_";
=== TEST 0: $what
$http--- config
$server--- must_die
--- error_log
$error



_EOB_
}

no_shuffle();
spec_string(ObsSpec::expand(\*DATA,
    REFUSED => [ map { refused($_) } @Refused ]));
run_tests();

__DATA__

=== TEST 1: all directives accepted at their documented levels
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock buffer=64k flush=200ms;
    obs_service_name backend-api;
    obs_tenant $http_x_tenant_id;
    obs_trace_context propagate;
    obs_trace_sample 0.25;
    obs_route_auto off;
    obs_upstream_span off;
    obs on;
--- config
    obs_route /server-level;
    location /t {
        obs on;
        obs_service_name ml-engine;
        obs_route "/api/v1/items/{id}";
        obs_route_auto on;
        obs_tenant $arg_tenant;
        obs_trace_context extract;
        obs_trace_sample 1;
        obs_upstream_span on;
        return 200 "$obs_route $obs_tenant\n";
    }
--- request
GET /t?tenant=acme
--- response_body
/api/v1/items/{id} acme
--- no_error_log
[emerg]
[alert]



=== TEST 2: obs_sidecar over UDP with a host name
--- http_config
    obs_sidecar udp:localhost:9999;
--- config
    location /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok



@REFUSED@



=== TEST 28: obs_sidecar key=: the shortest key of framing.h
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock key=$TEST_NGINX_OBS_KEY_DIR/min.key;
--- config
    location /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok



=== TEST 29: obs_sidecar key=: the longest key of framing.h
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock key=$TEST_NGINX_OBS_KEY_DIR/max.key;
--- config
    location /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok



=== TEST 30: obs_sidecar key=: one byte past the longest key
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock key=$TEST_NGINX_OBS_KEY_DIR/long.key;
--- config
--- must_die
--- error_log eval
qr/key file "[^"]+long.key" in "obs_sidecar" must hold a key of $::Framing->{OBS_KEY_MIN} to $::Framing->{OBS_KEY_MAX} bytes on its first line/



=== TEST 31: obs_sidecar key=: a NUL byte in the key (the sidecar's ends there)
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock key=$TEST_NGINX_OBS_KEY_DIR/nul.key;
--- config
--- must_die
--- error_log
in "obs_sidecar" has a NUL byte in its key: the sidecar would read a shorter key
