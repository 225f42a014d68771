# vim:set ft= ts=4 sw=4 et fdm=marker:
# A sidecar socket nginx's workers may not write to (a sidecar started
# without --ingest-group): the error log names the fix, once a minute at
# most, and requests are served as usual.  Root ignores a socket's mode,
# so the workers run as "nobody" (TEST_NGINX_WORKER_USER, as the real
# Test::Nginx reads it) and the master must start as root; the sockets are
# this test's own, in a directory nobody may enter.

our ($Dir, $Closed, $Open);

BEGIN {
    # nobody's own group ("nogroup" on Debian): nginx would look for a
    # group named "nobody" otherwise
    $ENV{TEST_NGINX_WORKER_USER} = 'nobody ' . getgrgid((getpwnam 'nobody')[3])
        if $> == 0;
}

use Test::Nginx::Socket $> == 0
    ? 'no_plan'
    : (skip_all => 'workers change user only when nginx starts as root');

use lib 't/helpers';
use ObsErrlog;
use File::Temp qw(tempdir);
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM);

BEGIN {
    $Dir = tempdir("obs-unwritable-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $Dir or die "chmod: $!";

    for my $name (qw(closed open)) {
        my $sock = IO::Socket::UNIX->new(Type => SOCK_DGRAM,
                                         Local => "$Dir/$name.sock")
            or die "bind $name.sock: $!";
        $sock->blocking(0);
        $name eq 'closed' ? ($Closed = $sock) : ($Open = $sock);
    }

    chmod 0600, "$Dir/closed.sock" or die "chmod: $!";   # root's only
    chmod 0666, "$Dir/open.sock" or die "chmod: $!";

    $ENV{TEST_NGINX_OBS_DIR} = $Dir;
}

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

master_on();
no_shuffle();

add_block_preprocessor(\&ObsErrlog::add);

run_tests();

# The open socket received records: the mode was the only difference.
my $got = 0;
while (defined $Open->recv(my $buf, 65536)) {
    last unless length $buf;
    $got++;
}
ok($got > 0, "records reached the socket nginx's workers may write to");

__DATA__

=== TEST 1: a socket the workers may not write to: the error names --ingest-group
--- http_config
    obs_sidecar unix:$TEST_NGINX_OBS_DIR/closed.sock flush=50ms;
--- config
    location /t { return 200 "ok\n"; }
--- request eval
[(map { "GET /t" } 1 .. 10), "GET /errlog"]
--- wait: 0.1
--- response_body_like eval
[(map { "^ok\n\$" } 1 .. 10),
 qr/\A(?![\s\S]*cannot send records[\s\S]*cannot send records)[\s\S]*\[error\] [^\n]*obs: cannot send records to "unix:[^"]*closed.sock": nginx's worker user may not write to the socket; start the sidecar with "--ingest-group GROUP" \(setting "ingest_group"\) naming a group of that user \(13: Permission denied\)/]
--- no_error_log
[alert]
[crit]



=== TEST 2: the same with a socket the workers may write to: no error
--- http_config
    obs_sidecar unix:$TEST_NGINX_OBS_DIR/open.sock flush=50ms;
--- config
    location /t { return 200 "ok\n"; }
--- request eval
[map { "GET /t" } 1 .. 5]
--- wait: 0.1
--- response_body eval
[map { "ok\n" } 1 .. 5]
--- no_error_log
cannot send records
[alert]
[crit]
