"""Extra `hotline` subcommands: every module here that defines `register(cli)` adds its own."""
