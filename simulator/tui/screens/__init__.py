"""The screens wasim's terminal UI opens over the phone: help, details, pickers, dialogs."""
