"""`python -m captchagen`: the same command line as `captchagen`."""

from captchagen.cli import main

main()
