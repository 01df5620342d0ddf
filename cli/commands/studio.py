"""`course studio`: the studio's accounts, from the command line (add, reset a password, disable, enable)."""

from __future__ import annotations

import argparse
import sys

from cli.common import CommandError, require_schema
from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    studio = commands.add_parser("studio", help="the studio's accounts")
    studio_commands = studio.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = studio_commands.add_parser(
        "add-user",
        help="create a studio account",
        description="Create a studio account. At a terminal it asks for a password; otherwise (or with --link) "
        "it prints a one-time link with which the person sets their own.",
    )
    add.add_argument("email")
    add.add_argument(
        "--role",
        choices=["editor", "publisher"],
        default="editor",
        help="editor: saves drafts; publisher: also publishes and rolls back (default editor)",
    )
    add.add_argument("--courses", default="*", help="comma-separated course slugs they may edit (default: all)")
    add.add_argument("--link", action="store_true", help="print a one-time sign-in link instead of asking")
    add.set_defaults(handler=_studio)
    reset = studio_commands.add_parser(
        "reset-password",
        help="take an account's password away and end its sessions",
        description="For a forgotten or leaked password: the password is removed, every session of the account "
        "ends at once, and a one-time link is printed with which its person sets a new one. Written to the "
        "audit log.",
    )
    reset.add_argument("email")
    reset.set_defaults(handler=_studio_account)
    disable = studio_commands.add_parser(
        "disable-user",
        help="stop an account from signing in and end its sessions",
        description="For someone who left, or an account that may be in the wrong hands: no sign-in, every "
        "session and one-time link ends at once. `enable-user` undoes it. Written to the audit log.",
    )
    disable.add_argument("email")
    disable.set_defaults(handler=_studio_account)
    enable = studio_commands.add_parser("enable-user", help="let a disabled account sign in again")
    enable.add_argument("email")
    enable.set_defaults(handler=_studio_account)


def _studio(arguments: argparse.Namespace) -> int:
    """`course studio add-user EMAIL`: an account, with a password typed now or a one-time link."""
    import getpass

    from cli.root import Root
    from course.models.studio import StudioRole
    from course.studio import StudioError, add_user, check_password
    from web.studio.auth import sign_in_link

    settings = get_settings()
    require_schema(settings)
    password = None
    if not arguments.link and sys.stdin.isatty():
        password = getpass.getpass("Password (12+ characters; empty: print a one-time sign-in link instead): ")
        if password:
            try:
                check_password(password)
            except StudioError as error:
                raise CommandError(str(error)) from None
            if getpass.getpass("The same password again: ") != password:
                raise CommandError("the two passwords differ; nothing was created")
        password = password or None
    with Root(settings) as root, root.sessions() as session:
        try:
            user = add_user(session, arguments.email, role=StudioRole(arguments.role), courses=arguments.courses,
                            password=password, now=root.clock())  # fmt: skip
        except StudioError as error:
            raise CommandError(str(error)) from None
        session.commit()
        print(f"Studio account for {user.email} ({user.role}).")
        if password is None:
            print(f"Send them this link to set a password (it works once, for a day):\n{sign_in_link(settings, user)}")
    return 0


def _studio_account(arguments: argparse.Namespace) -> int:
    """`course studio reset-password | disable-user | enable-user EMAIL`."""
    from cli.root import Root
    from course.studio import StudioError, reset_password, set_disabled
    from web.studio.auth import sign_in_link

    settings = get_settings()
    require_schema(settings)
    with Root(settings) as root, root.sessions() as session:
        now = root.clock()  # the time every process goes by (course/clock.py)
        try:
            if arguments.action == "reset-password":
                user = reset_password(session, arguments.email, now)
            else:
                user = set_disabled(session, arguments.email, now, disabled=arguments.action == "disable-user")
        except StudioError as error:
            raise CommandError(str(error)) from None
        session.commit()
        if arguments.action == "reset-password":
            print(f"The password of {user.email} is removed and every session of theirs has ended.")
            link = sign_in_link(settings, user)
            print(f"Send them this link to set a new one (it works once, for a day):\n{link}")
        elif arguments.action == "disable-user":
            print(f"{user.email} can no longer sign in; every session of theirs has ended.")
        else:
            print(f"{user.email} may sign in again (with their password, or `course studio reset-password`).")
    return 0
