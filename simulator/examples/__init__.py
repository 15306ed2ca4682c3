"""Runnable webhook examples that `wasim new --example fastapi|flask` writes for you to copy.

Each checks the signature, answers each tap once (Kaleyra delivers at least once) and replies
through Kaleyra's V2 send API with a complete body. Never imported by wasim itself.
"""
