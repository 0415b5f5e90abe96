"""``python -m tiltstream.cli``: the same command as the ``tiltstream`` script."""

from tiltstream.cli import main

main()
