"""``python -m photonpack`` runs the CLI."""

from photonpack.cli import main

if __name__ == "__main__":
    main()
