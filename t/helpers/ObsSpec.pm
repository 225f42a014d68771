package ObsSpec;

# Blocks made from tables: a test file's __DATA__ holds a line @NAME@ where
# the blocks of a table go; ObsSpec::expand(\*main::DATA, NAME => [blocks])
# puts them there and numbers every block in order, for spec_string().  A
# table is one row per case and the block written once, instead of a copy
# of the block per case.

use strict;
use warnings;

sub expand {
    my ($fh, %tables) = @_;
    my $spec = do { local $/; <$fh> };
    my $n = 0;

    for my $name (keys %tables) {
        my $blocks = CORE::join('', @{ $tables{$name} });
        $spec =~ s/^\@\Q$name\E\@\n(?:\n)*/$blocks/m
            or die "no \@$name\@ line in __DATA__";
    }

    $spec =~ s/^=== TEST \w+:/'=== TEST ' . ++$n . ':'/mge;
    return $spec;
}

1;
