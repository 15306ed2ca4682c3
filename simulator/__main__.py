"""`python -m simulator`: the same as the `wasim` command."""

from simulator.cli import cli, main
from simulator.tui.web import served_command

if __name__ == "__main__":
    served = served_command()  # `--web`'s page runs the same command (simulator.tui.web)
    if served is None:
        main()
    else:
        cli.main(args=served, prog_name="wasim")
