"""`python -m captchagen.cli` (as torchrun -m needs): the same command line as `captchagen`."""

from captchagen.cli import main

main()
