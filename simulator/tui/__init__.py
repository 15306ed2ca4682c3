"""wasim's terminal UI: a phone in the terminal that taps a template's buttons.

Only this package imports Textual, and only its `app`, `screens` and `widgets` modules do:
`commands`, `session` and `feed` stay importable without it, so `wasim --help` never pays
for Textual.
"""
