"""The reusable pieces of wasim's terminal UI: phone, preview, log, run panel, target bar."""
