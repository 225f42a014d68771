package ObsSink;

# Starts t/helpers/obs_sink.py for the current test file and exports where it
# listens: TEST_NGINX_SINK_SOCK (records socket) and TEST_NGINX_SINK_PORT
# (its HTTP port), both usable in Test::Nginx config sections.
#
# ObsSink::preprocess($block, $http_config) is the block preprocessing the
# record tests share: blocks without an http_config get $http_config, and
# every block's server gets the locations in $ObsSink::Locations:
#   /sink/...  the sink's HTTP API (reset, records, count, stats, ...)
#   /errlog    this nginx's error log so far, for checks that span a whole
#              request list (error_log sections are checked per request)

use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use ObsErrlog;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();

my ($pid, $owner);

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub start {
    my $dir = tempdir("obs-sink-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $sock = "$dir/records.sock";
    my $port = free_port();
    my $proto = $ENV{OBS_PROTO_DIR} || dirname(__FILE__) . "/../../proto";
    my $script = dirname(__FILE__) . "/obs_sink.py";

    pipe(my $r, my $w) or die "pipe: $!";
    $owner = $$;
    $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        close $r;
        open STDOUT, '>&', $w or die;
        { exec '/usr/bin/python3', $script, $sock, $port, $proto; }
        POSIX::_exit(127);
    }

    close $w;
    my $line = <$r>;
    die "obs_sink.py did not start" unless defined $line && $line =~ /ready/;

    $ENV{TEST_NGINX_SINK_SOCK} = $sock;
    $ENV{TEST_NGINX_SINK_PORT} = $port;
}

END {
    local $?;

    if ($pid && $owner == $$) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}

our $Locations = <<'_EOC_' . $ObsErrlog::Location;
    location /sink/ {
        obs off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/;
    }
_EOC_

# The largest record a worker can make: every text at its limit and eight
# failed attempts (t/040's and t/090's size bounds).  LargestHttp goes after
# a file's own http_config (location /big/ proxies to eight_dead);
# LargestHeaders are the request's headers, each at its limit.
our $LargestHttp = <<'_EOC_';
    obs_service_name $http_x_service;
    obs_tenant $http_x_tenant_id;
    upstream eight_dead {
_EOC_
$LargestHttp .= CORE::join('', map {
    "        server unix:\$TEST_NGINX_HTML_DIR/dead$_.sock;\n" } 1 .. 9)
    . "    }\n";

our $LargestHeaders = "User-Agent: " . ("u" x 600) . "\n"
    . "X-Request-ID: " . ("r" x 200) . "\n"
    . "X-Tenant-ID: " . ("t" x 64) . "\n"
    . "X-Service: " . ("s" x 300) . "\n"
    . "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"
    . "tracestate: "
    . CORE::join(',', map { sprintf "k%02d=%s", $_, "v" x 12 } 1 .. 32)
    . "\n";

sub preprocess {
    my ($block, $http_config) = @_;
    $block->set_value("http_config", $http_config)
        if defined $http_config && !defined $block->http_config;
    $block->set_value("config", ($block->config // '') . $Locations);
}

start();

1;
