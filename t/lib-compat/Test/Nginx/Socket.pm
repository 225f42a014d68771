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
#   response_headers_like error_log no_error_log shutdown_error_log
#   no_shutdown_error_log raw_request_middle_delay
#
# with the real runner's semantics where they matter: error_log patterns
# are matched line by line after every request of a request list, against
# what that request logged; a raw_request array is one request sent in
# pieces; TEST_NGINX_HTML_DIR is the test file's to set.
#
# TEST_NGINX_WORKER_USER, as in the real runner, names the workers' user.
#
# and the functions no_shuffle, repeat_each, master_on, log_level,
# no_root_location, add_block_preprocessor, check_accum_error_log,
# html_dir, server_root and run_tests.

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
                 env_to_nginx workers html_dir server_root
                 check_accum_error_log);

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

# TEST_NGINX_USE_VALGRIND=1 runs nginx under memcheck as the real runner
# does (a value that is not a number is taken as valgrind's options), with
# ./valgrind.suppress when it exists.  Each process writes its report to
# servroot; any report is a failure of the block.
my $UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
my $Slow = $UseValgrind ? 20 : 1;
my $ChildPid;

# Like the real runner, TEST_NGINX_HTML_DIR is left to the test files
# ($ENV{TEST_NGINX_HTML_DIR} ||= html_dir();).
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;

sub html_dir { return "$ServRoot/html" }
sub server_root { return $ServRoot }

sub no_shuffle { }
sub repeat_each { return 1 }
sub master_on { $MasterOn = 1 }
sub master_off { $MasterOn = 0 }
sub workers { $Workers = shift }
sub log_level { $LogLevel = shift }
sub no_root_location { $NoRootLocation = 1 }
# the real runner runs the last one added first
sub add_block_preprocessor { unshift @Preprocessors, shift }
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

    my $user = defined $ENV{TEST_NGINX_WORKER_USER}
             ? "user $ENV{TEST_NGINX_WORKER_USER};\n"
             : $> == 0 ? "user root;\n" : '';
    my $master = $MasterOn ? 'on' : 'off';
    my $daemon = $UseValgrind ? 'off' : 'on';
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
daemon $daemon;
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

# As the real runner: -e puts what nginx logs while it reads the
# configuration (warnings included) in the block's error.log.
sub run_nginx {
    my @args = @_;
    my $out = `$NginxBin -e $ServRoot/logs/error.log -p $ServRoot/ -c conf/nginx.conf @args 2>&1`;
    return ($? >> 8, $out);
}

sub valgrind_command {
    my $opts = $UseValgrind;
    if ($opts =~ /^\d+$/) {
        $opts = '--tool=memcheck --leak-check=full --keep-debuginfo=yes'
              . ' --show-possibly-lost=no --num-callers=100'
              . ' --gen-suppressions=all';
        $opts .= ' --suppressions=valgrind.suppress' if -f 'valgrind.suppress';
    }
    return ('valgrind', '-q', split(' ', $opts),
            "--log-file=$ServRoot/valgrind.%p.log");
}

# nginx in the foreground under valgrind, as a child of this process.
sub start_nginx_valgrind {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$ServRoot/logs/stderr.log";
        open STDERR, '>&', \*STDOUT;
        { exec valgrind_command(), $NginxBin, '-e',
               "$ServRoot/logs/error.log", '-p', "$ServRoot/", '-c',
               'conf/nginx.conf'; }
        require POSIX;
        POSIX::_exit(127);
    }
    $ChildPid = $pid;
    return (0, '');
}

# The reports valgrind wrote for this block's processes; empty when clean.
sub valgrind_reports {
    my $out = '';
    for my $f (sort glob "$ServRoot/valgrind.*.log") {
        open my $fh, '<', $f or next;
        local $/;
        my $text = <$fh>;
        close $fh;
        $out .= "== $f\n$text" if defined $text && length $text;
    }
    return $out;
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
    for (1 .. 200 * $Slow) {
        last unless -e $pidfile && kill 0, $pid;
        sleep 0.025;
    }
    kill 'KILL', $pid if kill 0, $pid;
    reap_child();
}

# Under valgrind the master is this process's child: wait until it (and
# so valgrind's leak report) is done.
sub reap_child {
    return unless $ChildPid;
    require POSIX;
    for (1 .. 2400) {
        last if waitpid($ChildPid, POSIX::WNOHANG()) != 0;
        sleep 0.025;
    }
    if (kill 0, $ChildPid) {
        kill 'KILL', $ChildPid;
        waitpid $ChildPid, 0;
    }
    undef $ChildPid;
}

# With daemon on, nginx returns before its child has written the pid file.
sub wait_for_server {
    for (1 .. 100 * $Slow) {
        last if -s "$ServRoot/logs/nginx.pid";
        sleep 0.02;
    }

    for (1 .. 100 * $Slow) {
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
    my ($raw, $timeout, $http09, $delay) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ServerPort)
        or return (undef, "cannot connect: $!");
    $s->autoflush(1);
    my @pieces = ref $raw eq 'ARRAY' ? @$raw : ($raw);
    for my $k (0 .. $#pieces) {
        sleep $delay if $k && $delay;
        print $s $pieces[$k];
    }

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

# A pattern matches one line of the log, as in the real runner: a string
# anywhere in the line, a regex against the line alone.
sub line_matches {
    my ($lines, $p) = @_;
    for my $line (@$lines) {
        return 1 if ref $p eq 'Regexp' ? $line =~ $p : index($line, $p) >= 0;
    }
    return 0;
}

# The real runner checks error_log/no_error_log after each request of a
# request list, against the lines logged since the previous check (all of
# them with check_accum_error_log).
sub check_error_log {
    my ($block, $i, $lines) = @_;
    my $name = $block->name;

    for my $p (patterns(sec($block, 'error_log'))) {
        ok(line_matches($lines, $p),
           "$name - pattern \"$p\" should match a line in error.log (req $i)");
    }

    for my $p (patterns(sec($block, 'no_error_log'))) {
        ok(!line_matches($lines, $p),
           "$name - pattern \"$p\" should not match any line in error.log (req $i)");
    }
}

# After nginx has stopped: what it logged on the way out.
sub check_shutdown_error_log {
    my ($block, $lines) = @_;
    my $name = $block->name;

    for my $p (patterns(sec($block, 'shutdown_error_log'))) {
        ok(line_matches($lines, $p),
           "$name - pattern \"$p\" should match a line in error.log");
    }

    for my $p (patterns(sec($block, 'no_shutdown_error_log'))) {
        ok(!line_matches($lines, $p),
           "$name - pattern \"$p\" should not match any line in error.log");
    }
}

my $ErrLogPos = 0;
my $CheckAccumErrLog = 0;

sub check_accum_error_log { $CheckAccumErrLog = 1 }

# The lines logged since the last call.
sub error_log_lines {
    open my $fh, '<', "$ServRoot/logs/error.log" or return [];
    seek $fh, $ErrLogPos, 0 unless $CheckAccumErrLog;
    my @lines = <$fh>;
    $ErrLogPos = tell $fh;
    close $fh;
    return \@lines;
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
    $ErrLogPos = 0;

    if (defined sec($block, 'must_die')) {
        my ($rc, $out) = run_nginx('-t');
        ok($rc != 0, $block->name . " - nginx must die");
        check_error_log($block, 0, [split /^/m, $out . read_error_log()]);
        return;
    }

    my ($rc, $out) = $UseValgrind ? start_nginx_valgrind() : run_nginx();
    if ($rc != 0) {
        fail($block->name . " - nginx failed to start: $out");
        return;
    }

    if (!wait_for_server()) {
        fail($block->name . " - nginx is not listening");
        stop_nginx();
        return;
    }

    # A raw_request array is one request sent in pieces, as in the real
    # runner; a request array is a list of requests.
    my $raw = sec($block, 'raw_request');
    my $requests = defined $raw ? [$raw] : sec($block, 'request');
    $requests = [$requests] unless ref $requests eq 'ARRAY';
    my $timeout = sec($block, 'timeout') // 5;
    $timeout =~ s/s$//;
    $timeout *= 3 if $UseValgrind;
    my $wait = sec($block, 'wait');
    my $delay = sec($block, 'raw_request_middle_delay') // 0;

    for my $i (0 .. $#$requests) {
        my $req = defined $raw ? $requests->[$i]
                : build_request($block, $requests->[$i]);
        my ($status, $h, $body) = send_request($req, $timeout,
                                               defined sec($block, 'http09'),
                                               $delay);

        if (!defined sec($block, 'ignore_response')) {
            if (!defined $status) {
                fail($block->name . " - $h") unless defined sec($block, 'abort');
            } else {
                check_response($block, $i, $status, $h, $body);
            }
        }

        sleep $wait if $wait;
        check_error_log($block, $i, error_log_lines());
    }

    stop_nginx();
    check_shutdown_error_log($block, error_log_lines());

    if ($UseValgrind) {
        my $reports = valgrind_reports();
        ok($reports eq '', $block->name . " - valgrind reports no error")
            or Test::More::diag($reports);
    }
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
