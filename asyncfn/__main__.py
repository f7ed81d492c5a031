"""`python -m asyncfn` runs the `asyncfn` command."""

from asyncfn.cli import main

if __name__ == "__main__":
    main()
