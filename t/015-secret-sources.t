# vim:set ft= ts=4 sw=4 et fdm=marker:
# No value that leaves the gateway (a metric label, a log line, a span
# attribute) may read a credential, a query string or the request body:
# every directive that exports a value is refused by `nginx -t` for every
# class of secret source, with a message naming the directive, the variable
# and what to use instead; neighbouring variables that are safe still pass.
# The blocks are generated: every directive x every class, every variable
# of the refused list at least once, and obs_log_field with every one.

use Test::Nginx::Socket 'no_plan';

use File::Temp qw(tempdir);

our $Dir;

BEGIN {
    $Dir = tempdir("obs-sources-XXXXXX", TMPDIR => 1, CLEANUP => 1);

    open my $fh, '>', "$Dir/user.key" or die $!;
    print $fh "0123456789abcdef-sources-test-key\n";
    close $fh;
}

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

no_shuffle();

# Each directive exporting a value, with X where the value goes.  The
# label of obs_metric takes a lone "$name" only.
my @directives = (
    [ obs_service_name => 'obs_service_name "X";' ],
    [ obs_route        => 'obs_route "X";' ],
    [ obs_tenant       => 'obs_tenant "X";' ],
    [ obs_log_field    => 'obs_log_field f "X";' ],
    [ obs_log_field    => qq{obs_log_field f "X" hmac=$Dir/user.key;} ],
    [ obs_metric       => 'obs_metric counter biz_total "X";' ],
    [ obs_metric       => 'obs_metric gauge biz_level 1 label=plan:X:a,b;',
      'lone' ],
);

# The refused sources by class: the fragment of the message that says why,
# and the variables (as written in a value; "lone" ones are one "$name").
my @classes = (
    [ 'credentials (the Authorization, Proxy-Authorization, Cookie and '
      . 'Set-Cookie headers, API keys, auth proxies\' token headers, '
      . 'cookies) never leave the gateway, not even as '
      . 'an hmac= pseudonym; use an identity the gateway verified',
      [ '$http_authorization', '$http_proxy_authorization', '$http_cookie',
        '$http_set_cookie', '$sent_http_set_cookie',
        '$upstream_http_set_cookie', '$upstream_http_authorization',
        '$upstream_http_proxy_authorization', 'user=${HTTP_AUTHORIZATION}',
        '$sent_trailer_set_cookie', '$upstream_trailer_set_cookie',
        '$HTTP_AUTHORIZATION', 'user=${http_authorization}',
        'a-$Http_Cookie-b', '$http_x_api_key',
        '$http_x_forwarded_access_token',
        '$http_x_auth_request_access_token',
        '$http_x_amzn_oidc_accesstoken', '$http_x_amzn_oidc_data',
        '$http_x_amz_security_token' ] ],

    [ 'credentials (the Authorization',
      [ '$cookie_sid', '$cookie_session', '$upstream_cookie_sid',
        '$COOKIE_SID',
        'sid:${cookie_session}' ] ],

    [ 'it can carry a query string, which never leaves the gateway; use '
      . '$uri, or a map that keeps only the path or the values you choose',
      [ '$args', '$query_string', '$request_uri', '$request',
        '$uri?$args', '${QUERY_STRING}', 'u=${REQUEST_URI}' ] ],

    [ 'it can carry a query string',
      [ '$http_referer', '$sent_http_location', '$upstream_http_location',
        '$upstream_http_refresh', '$sent_http_refresh',
        '$http_content_location', '$upstream_http_content_location',
        '$upstream_http_link', '$upstream_http_x_accel_redirect',
        '$http_x_original_uri', '$http_x_original_url',
        '$http_x_forwarded_uri', '$http_x_rewrite_url',
        '$upstream_trailer_location', '$HTTP_REFERER',
        '$http_x_envoy_original_path' ] ],

    [ 'the request body never leaves the gateway; have the service return '
      . 'the value in a response header',
      [ '$request_body', '$request_body_file', 'b=${request_body}' ] ],
);

sub lone { $_[0] =~ /^\$\w+$/ }

# the variable as the message names it (the last one is the secret)
sub named {
    my ($value) = @_;
    $value =~ /.*\$\{?(\w+)/ or die "no variable in $value";
    return "\$$1";
}

my $spec = '';
my %used;
my $n = 0;

my %done;

sub refused {
    my ($directive, $value, $why) = @_;
    my ($name, $template) = @$directive;
    return if $done{"$template $value"}++;
    (my $line = $template) =~ s/X/$value/;
    my $var = named($value);
    $used{$value} = 1;
    $n++;
    $spec .= <<"_EOB_";
=== TEST $n: $name refuses $value
--- config
    location /x {
        $line
    }
--- must_die
--- error_log
"$name" directive may not use "$var": $why



_EOB_
}

# every directive x every class, the variables taken in turn
for my $c (0 .. $#classes) {
    my ($why, $values) = @{ $classes[$c] };

    for my $d (0 .. $#directives) {
        my @fit = grep { !$directives[$d][2] || lone($_) } @$values;
        refused($directives[$d], $fit[($c + $d) % @fit], $why);
    }
}

# ... and every variable of the lists at least once, in turn
my $d = 0;
for my $class (@classes) {
    my ($why, $values) = @$class;

    for my $value (grep { !$used{$_} } @$values) {
        $d++ until !$directives[$d % @directives][2] || lone($value);
        refused($directives[$d++ % @directives], $value, $why);
    }
}

# obs_log_field writes a value out as it is (or as its HMAC): it refuses
# every variable of every class, in both forms
for my $class (@classes) {
    my ($why, $values) = @$class;

    for my $value (@$values) {
        refused($_, $value, $why)
            for grep { $_->[0] eq 'obs_log_field' } @directives;
    }
}

# Safe neighbours: names that share a prefix with a refused one, one
# argument the configuration chose, the path, Origin (scheme, host and
# port only: RFC 6454), the Basic user name (not its password).
$n++;
$spec .= <<"_EOB_";
=== TEST $n: safe variables pass every directive
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock;
--- config
    location /ok {
        obs_service_name "svc-\$http_x_service";
        obs_route "/ok/\$arg_kind";
        obs_tenant \$http_x_tenant_id;
        obs_log_field origin \$http_origin;
        obs_log_field where "\$uri\$is_args";
        obs_log_field ua \$http_user_agent;
        obs_log_field rid \$request_id;
        obs_log_field m "\$request_method \$request_length \$request_time";
        obs_log_field user \$remote_user hmac=$Dir/user.key;
        obs_log_field near "\$http_x_authorization_hint \$http_cookies \$http_referer_policy \$arg_request_uri";
        obs_metric counter biz_total \$upstream_http_x_count;
        obs_metric gauge biz_level \$sent_http_x_level label=plan:\$arg_plan:a,b;
        return 200 "ok \$obs_route \$obs_tenant\\n";
    }
--- request
GET /ok?kind=k&plan=a
--- more_headers
X-Tenant-ID: acme
--- response_body
ok /ok/k acme
--- no_error_log
[emerg]
[alert]



_EOB_

# The token obs_jwt_token reads is a credential too, from whichever
# variable it reads it, whether that directive comes before or after the
# value that would export it; a neighbouring name still passes.
my $why_token = 'reads the token from it; a token is a credential, which '
    . 'never leaves the gateway; use an identity the gateway verified';
my @tokens = (
    [ 'obs_log_field after obs_jwt_token', '',
      'obs_jwt_token $http_x_token; obs_log_field t $http_x_token;',
      qq{"obs_log_field" directive may not use "\$http_x_token": }
      . qq{"obs_jwt_token" in} ],
    [ 'obs_tenant before obs_jwt_token', 'obs_tenant "t-${ARG_TOKEN}";',
      'obs_jwt_token $arg_token;',
      qq{may not use "\$arg_token": this "obs_jwt_token" $why_token} ],
    [ 'a label of obs_metric', '',
      'obs_jwt_token $http_x_jwt; '
      . 'obs_metric counter biz_total 1 label=k:$http_x_jwt:a,b;',
      qq{"obs_metric" directive may not use "\$http_x_jwt": }
      . qq{"obs_jwt_token" in} ],
);

for my $t (@tokens) {
    my ($name, $http, $loc, $error) = @$t;
    $n++;
    $spec .= <<"_EOB_";
=== TEST $n: the token's own variable: $name
--- http_config
    $http
--- config
    location /x {
        $loc
    }
--- must_die
--- error_log
$error



_EOB_
}

$n++;
$spec .= <<"_EOB_";
=== TEST $n: the token's own variable: a neighbour passes
--- http_config
    obs_sidecar unix:/tmp/obs-absent.sock;
    obs_log_field id \$http_x_token_id;
--- config
    location /ok {
        obs_jwt_token \$http_x_token;
        obs_tenant \$arg_token_hint;
        return 200 "ok\\n";
    }
--- request
GET /ok
--- response_body
ok
--- no_error_log
[emerg]



_EOB_

spec_string($spec);

run_tests();
