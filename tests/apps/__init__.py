"""Small webhook apps the end-to-end tests deliver into, in-process."""
