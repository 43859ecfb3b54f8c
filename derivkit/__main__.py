"""`python -m derivkit` runs the command-line interface."""

from derivkit.cli import main

if __name__ == "__main__":
    main()
