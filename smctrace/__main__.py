"""``python -m smctrace``: the same as the ``smctrace`` command."""

from smctrace.entry import main

main()
