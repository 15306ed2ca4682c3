"""`python -m simulator`: the same as the `wasim` command."""

from simulator.cli import main

if __name__ == "__main__":
    main()
