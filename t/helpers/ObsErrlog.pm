package ObsErrlog;

# The location /errlog: this nginx's error log so far, for checks that span
# a whole request list (error_log sections are checked per request).
# add_block_preprocessor(\&ObsErrlog::add) gives it to every block.

use strict;
use warnings;

our $Location = <<'_EOC_';
    location = /errlog {
        obs off;
        default_type text/plain;
        alias $TEST_NGINX_HTML_DIR/../logs/error.log;
    }
_EOC_

sub add {
    my $block = shift;
    $block->set_value("config", ($block->config // '') . $Location);
}

1;
