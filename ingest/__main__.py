"""`python -m ingest`: the same worker as `ldl ingest`."""

from ldl.cli import main

if __name__ == "__main__":
    import sys

    sys.argv = ["ldl", "ingest", *sys.argv[1:]]
    main()
