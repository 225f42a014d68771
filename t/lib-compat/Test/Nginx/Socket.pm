package Test::Nginx::Socket;

# A small stand-in for CPAN's Test::Nginx::Socket, used only where the real
# one is not installed (t/run-prove.sh decides).  It reads the same
# __DATA__ blocks through Test::Base and supports the sections this
# project's tests use:
#
#   main_config http_config config must_die
#   request (text or eval array) raw_request more_headers timeout abort wait
#   error_code response_body response_body_like response_body_unlike
#   http09 ignore_response
#   response_headers
#   response_headers_like error_log no_error_log
#
# and the functions no_shuffle, repeat_each, master_on, log_level,
# no_root_location, add_block_preprocessor and run_tests.

use strict;
use warnings;

use Test::Base ();
use Test::More ();

use Cwd qw(cwd);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

our @EXPORT = qw(run_tests no_shuffle repeat_each master_on master_off
                 log_level no_root_location add_block_preprocessor
                 env_to_nginx workers);

# Test::Base's own functions (plan, blocks, is, like, ...) and its plan
# arguments go to the test file, ours are added beside them.
sub import {
    my ($class, @args) = @_;
    my $caller = caller;

    eval "package $caller; Test::Base->import(\@args); 1" or die $@;

    no strict 'refs';
    *{"${caller}::$_"} = \&{"${class}::$_"} for @EXPORT;
}

*is = \&Test::More::is;
*ok = \&Test::More::ok;
*like = \&Test::More::like;
*unlike = \&Test::More::unlike;
*fail = \&Test::More::fail;

my $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
my $ServRoot = cwd() . '/t/servroot';
my $NginxBin = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $MasterOn = 0;
my $Workers = 1;
my $LogLevel = 'debug';
my $NoRootLocation = 0;
my @Preprocessors;
my @EnvToNginx;

$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_HTML_DIR} = "$ServRoot/html";
$ENV{TEST_NGINX_SERVROOT} = $ServRoot;

sub no_shuffle { }
sub repeat_each { return 1 }
sub master_on { $MasterOn = 1 }
sub master_off { $MasterOn = 0 }
sub workers { $Workers = shift }
sub log_level { $LogLevel = shift }
sub no_root_location { $NoRootLocation = 1 }
sub add_block_preprocessor { push @Preprocessors, shift }
sub env_to_nginx { push @EnvToNginx, @_ }

# A section's value in scalar context, or undef when the block has none.
sub sec {
    my ($block, $name) = @_;
    return undef unless $block->can($name);
    my $v = $block->$name;
    return $v;
}

sub expand_env {
    my $s = shift;
    return '' unless defined $s;
    $s =~ s/\$(TEST_NGINX_[_A-Z0-9]+)/
        defined $ENV{$1} ? $ENV{$1} : die "$1 is not set"/ge;
    return $s;
}

sub write_config {
    my $block = shift;

    remove_tree($ServRoot);
    make_path("$ServRoot/conf", "$ServRoot/logs", "$ServRoot/html");

    my $modules = '';
    for my $m (split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} || '') {
        $modules .= "load_module $m;\n" if $m;
    }

    my $user = $> == 0 ? "user root;\n" : '';
    my $master = $MasterOn ? 'on' : 'off';
    my $env = join '', map { "env $_;\n" } @EnvToNginx;
    my $main = expand_env(sec($block, 'main_config'));
    my $http = expand_env(sec($block, 'http_config'));
    my $config = expand_env(sec($block, 'config'));
    my $root = $NoRootLocation ? ''
             : "        location / {\n            root html;\n        }\n";

    open my $fh, '>', "$ServRoot/conf/nginx.conf" or die $!;
    print $fh <<"_EOC_";
$modules
worker_processes $Workers;
daemon on;
master_process $master;
error_log logs/error.log $LogLevel;
pid logs/nginx.pid;
$user$env
$main

http {
    access_log logs/access.log;
    default_type text/plain;
    keepalive_timeout 68;

    client_body_temp_path $ServRoot/client_body_temp;
    proxy_temp_path $ServRoot/proxy_temp;
    fastcgi_temp_path $ServRoot/fastcgi_temp;
    uwsgi_temp_path $ServRoot/uwsgi_temp;
    scgi_temp_path $ServRoot/scgi_temp;

$http

    server {
        listen $ServerPort;
        server_name localhost;
        client_max_body_size 30M;

$root
$config
    }
}

events {
    accept_mutex off;
    worker_connections 256;
}
_EOC_
    close $fh;
}

sub run_nginx {
    my @args = @_;
    my $out = `$NginxBin -p $ServRoot/ -c conf/nginx.conf @args 2>&1`;
    return ($? >> 8, $out);
}

sub stop_nginx {
    my $pidfile = "$ServRoot/logs/nginx.pid";
    return unless -f $pidfile;
    open my $fh, '<', $pidfile or return;
    my $pid = <$fh>;
    close $fh;
    chomp $pid;
    return unless $pid;
    kill 'QUIT', $pid;

    # nginx removes its pid file on the way out; a zombie may linger until
    # whatever adopted the daemon reaps it
    for (1 .. 200) {
        last unless -e $pidfile && kill 0, $pid;
        sleep 0.025;
    }
    kill 'KILL', $pid if kill 0, $pid;
}

# With daemon on, nginx returns before its child has written the pid file.
sub wait_for_server {
    for (1 .. 100) {
        last if -s "$ServRoot/logs/nginx.pid";
        sleep 0.02;
    }

    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ServerPort);
        if ($s) {
            close $s;
            return 1;
        }
        sleep 0.02;
    }
    return 0;
}

sub build_request {
    my ($block, $text) = @_;

    my ($line, $body) = split /\n/, $text, 2;
    $line =~ s/^\s+|\s+$//g;
    $line .= ' HTTP/1.1' unless $line =~ m{ HTTP/\d\.\d$};
    $body = '' unless defined $body;

    my $headers = "Host: localhost\r\nConnection: close\r\n";
    my $more = sec($block, 'more_headers');
    if (defined $more) {
        for my $h (split /\n/, $more) {
            next if $h =~ /^\s*$/;
            $headers .= "$h\r\n";
        }
    }
    $headers .= 'Content-Length: ' . length($body) . "\r\n" if length $body;

    return "$line\r\n$headers\r\n$body";
}

# Returns (status, headers hashref, body) or undef on timeout.
sub send_request {
    my ($raw, $timeout, $http09) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ServerPort)
        or return (undef, "cannot connect: $!");
    $s->autoflush(1);
    print $s $raw;

    my $sel = IO::Select->new($s);
    my $data = '';
    my $deadline = time + $timeout;

    while (1) {
        my $left = $deadline - time;
        return (undef, 'timeout') if $left <= 0;
        last unless $sel->can_read($left);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $data .= $buf;
    }
    close $s;

    # an HTTP/0.9 response is the body alone, as the real runner reads it
    return (200, {}, $data) if $http09;

    my ($head, $body) = split /\r\n\r\n/, $data, 2;
    return (undef, "bad response: $data") unless defined $head;
    $body = '' unless defined $body;

    my @lines = split /\r\n/, $head;
    my ($status) = (shift(@lines) // '') =~ m{^HTTP/\d\.\d (\d+)};
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }

    if (($h{'transfer-encoding'} || '') =~ /chunked/i) {
        my $decoded = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $decoded .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $decoded;
    }

    return ($status, \%h, $body);
}

sub pick {
    my ($value, $i) = @_;
    return ref $value eq 'ARRAY' ? $value->[$i] : $value;
}

sub check_response {
    my ($block, $i, $status, $h, $body) = @_;
    my $name = $block->name . ($i ? " (req $i)" : '');

    my $code = pick(sec($block, 'error_code'), $i);
    $code = 200 unless defined $code;
    is($status, $code, "$name - status code ok");

    my $expected = pick(sec($block, 'response_body'), $i);
    is($body, $expected, "$name - response_body - response is expected")
        if defined $expected;

    my $like = pick(sec($block, 'response_body_like'), $i);
    like($body, qr/$like/s, "$name - response_body_like - response is expected")
        if defined $like;

    my $unlike = pick(sec($block, 'response_body_unlike'), $i);
    unlike($body, qr/$unlike/s, "$name - response_body_unlike - response is expected")
        if defined $unlike;

    my $rh = pick(sec($block, 'response_headers'), $i);
    for my $line (split /\n/, $rh // '') {
        next if $line =~ /^\s*$/;
        if ($line =~ /^!\s*([^:]+)/) {
            ok(!defined $h->{lc $1}, "$name - header $1 not present");
            next;
        }
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/;
        is($h->{lc $k}, $v, "$name - header $k ok");
    }

    my $rhl = pick(sec($block, 'response_headers_like'), $i);
    for my $line (split /\n/, $rhl // '') {
        next if $line =~ /^\s*$/;
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/;
        like($h->{lc $k} // '', qr/$v/, "$name - header $k like ok");
    }
}

sub patterns {
    my $v = shift;
    return () unless defined $v;
    return @$v if ref $v eq 'ARRAY';
    return ($v) if ref $v eq 'Regexp';
    return grep { length } split /\n/, $v;
}

sub check_error_log {
    my ($block, $log) = @_;
    my $name = $block->name;

    for my $p (patterns(sec($block, 'error_log'))) {
        my $hit = ref $p eq 'Regexp' ? $log =~ $p : index($log, $p) >= 0;
        ok($hit, "$name - pattern \"$p\" should match a line in error.log");
    }

    for my $p (patterns(sec($block, 'no_error_log'))) {
        my $hit = ref $p eq 'Regexp' ? $log =~ $p : index($log, $p) >= 0;
        ok(!$hit, "$name - pattern \"$p\" should not match any line in error.log");
    }
}

sub read_error_log {
    open my $fh, '<', "$ServRoot/logs/error.log" or return '';
    local $/;
    my $log = <$fh>;
    close $fh;
    return $log;
}

sub run_block {
    my $block = shift;

    $_->($block) for @Preprocessors;
    write_config($block);

    if (defined sec($block, 'must_die')) {
        my ($rc, $out) = run_nginx('-t');
        ok($rc != 0, $block->name . " - nginx must die");
        check_error_log($block, $out . read_error_log());
        return;
    }

    my ($rc, $out) = run_nginx();
    if ($rc != 0) {
        fail($block->name . " - nginx failed to start: $out");
        return;
    }

    if (!wait_for_server()) {
        fail($block->name . " - nginx is not listening");
        stop_nginx();
        return;
    }

    my $requests = sec($block, 'raw_request') // sec($block, 'request');
    $requests = [$requests] unless ref $requests eq 'ARRAY';
    my $timeout = sec($block, 'timeout') // 5;
    $timeout =~ s/s$//;

    for my $i (0 .. $#$requests) {
        my $raw = defined sec($block, 'raw_request') ? $requests->[$i]
                : build_request($block, $requests->[$i]);
        my ($status, $h, $body) = send_request($raw, $timeout,
                                               defined sec($block, 'http09'));

        next if defined sec($block, 'ignore_response');

        if (!defined $status) {
            fail($block->name . " - $h") unless defined sec($block, 'abort');
            next;
        }

        check_response($block, $i, $status, $h, $body);
    }

    my $wait = sec($block, 'wait');
    sleep $wait if $wait;

    stop_nginx();
    check_error_log($block, read_error_log());
}

sub run_tests {
    for my $block (Test::Base::blocks()) {
        run_block($block);
    }
}

END {
    stop_nginx();
}

1;
