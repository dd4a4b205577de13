#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

EX_TEMPFAIL = 75


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A bad setting is the operator's to fix: say which and why, without a traceback.
        sys.stderr.write(f"configuration error: {exc}\n")
        # An MTA pipes mail into `mail_receive`: 75 (EX_TEMPFAIL) has it keep the message and
        # try again once the setting is fixed; any other code bounces the owner's request.
        sys.exit(EX_TEMPFAIL if sys.argv[1:2] == ["mail_receive"] else 2)


if __name__ == "__main__":
    main()
