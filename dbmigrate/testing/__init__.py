"""testing: for the tests of any Orion service: the pytest plugin (plugin.py), the apps' Piccolo
tables bound to a test's own database (binding.py), template databases and their warm pool of
clones (templates.py), and helpers that run the CLI against databases of a test's own
(helpers.py). May import: commands and everything below."""
