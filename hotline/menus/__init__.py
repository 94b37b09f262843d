"""Menus as data: the voice script's schema, loader and engine, and the SMS keyword matching. Pure:
nothing here imports Flask, Twilio or the database, so a whole menu tree is cheap to test."""
