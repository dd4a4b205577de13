"""The takedown mailbox: inbound email parsed, its sender judged, and the mailbox polled.

`mailbox` (the address of the IMAP mailbox, read by config/settings.py) imports no models.
"""
