package ObsContract;

# The module-sidecar contract as the Perl tests see it: proto/obs/v1's
# framing.h constants and the rows of its X-macro tables, read from the
# files themselves (t/helpers/obs_contract.py does the same for Python), so
# a test never restates a bound or a name.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;

my $Proto = File::Spec->rel2abs(dirname(__FILE__) . '/../../proto/obs/v1');

# framing.h's #define NAME value, numbers as numbers
sub framing {
    my %c;
    open my $fh, '<', "$Proto/framing.h" or die "framing.h: $!";
    while (<$fh>) {
        $c{$1} = $2 if /^#define\s+(OBS_\w+)\s+(\d+)\s*$/;
    }
    close $fh;
    return \%c;
}

# The rows of a .def file: each OBS_MACRO(a, b, ...) as [a, b, ...]
sub rows {
    my ($file, $macro) = @_;
    my @rows;
    open my $fh, '<', "$Proto/$file" or die "$file: $!";
    local $/;
    my $text = <$fh>;
    close $fh;
    $text =~ s{/\*.*?\*/}{}gs;
    $text =~ s/^#.*$//mg;
    while ($text =~ /\b\Q$macro\E\(([^()]*)\)/g) {
        push @rows, [ map { s/^\s+|\s+$//gr } split /,/, $1 ];
    }
    return @rows;
}

1;
