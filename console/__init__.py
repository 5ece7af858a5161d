"""The technician's console and the `smp` command line.

The only package that imports textual. Importing this package is cheap: the command line
imports the heavy parts (textual, sqlalchemy) only when a subcommand needs them.
"""
