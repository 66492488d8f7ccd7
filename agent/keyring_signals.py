"""Hear the OS keyring say that our entry changed: the Secret Service's and KWallet's D-Bus signals.

A keyring reached over the session bus keeps its secrets where it likes (KeePassXC in its own
database, GNOME Keyring in its folder), but it announces every change on the bus: the Secret
Service sends ``ItemCreated``/``ItemChanged``/``ItemDeleted`` from the collection concerned
(and ``CollectionDeleted``/``CollectionChanged`` from the service), KWallet sends
``folderUpdated(wallet, folder)``. :class:`KeyringSignals` subscribes to them on a connection of
its own and calls ``on_change()`` only for the entries our key lives under: the Secret
Service's items whose attributes are ours (asked with ``SearchItems``, which needs no secret),
KWallet's folder named after our service. Reading the key itself stays the child process's
work (``agent.secrets.keyring_call_in_child``).

Its thread blocks on the bus socket (no timer, no CPU while nothing happens). This module
imports jeepney, a pure-Python D-Bus library (0.34 MiB of the 0.38 MiB it adds to the agent, as
bench/bench_keyring_signals.py measures), and is imported only
when the keyring's backend is one of these and a session bus is there to hear it on
(``agent.key_watch``).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable

from jeepney import DBusAddress, DBusErrorResponse, HeaderFields, MatchRule, Message, new_method_call
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from jeepney.low_level import MessageFlag

from .secrets import KEYRING_SERVICE, KEYRING_USER, KWALLET_SIGNALS, SECRET_SERVICE_SIGNALS, KeyringResult

log = logging.getLogger(__name__)

SECRETS_NAME = "org.freedesktop.secrets"
SERVICE = "org.freedesktop.Secret.Service"
COLLECTION = "org.freedesktop.Secret.Collection"
ITEM = "org.freedesktop.Secret.Item"
SECRETS = DBusAddress("/org/freedesktop/secrets", SECRETS_NAME, SERVICE)
PROPERTIES = "org.freedesktop.DBus.Properties"
BUS = "org.freedesktop.DBus"
KWALLET = "org.kde.KWallet"
KWALLET_NAMES = ("org.kde.kwalletd6", "org.kde.kwalletd5", "org.kde.kwalletd")
ITEM_SIGNALS = ("ItemCreated", "ItemChanged", "ItemDeleted")
CALL_TIMEOUT = 5.0  # seconds for the provider to answer a search


class KeyringSignals:
    """Calls ``on_change(what)`` (on its own thread) when the keyring says our key's entry changed;
    ``what`` names it: the item, the collection, the wallet's folder, or the keyring's bus name.

    ``kinds`` are what the keyring's backends answered (``agent.secrets.change_signals``).
    """

    def __init__(self, kinds: Iterable[str], on_change: Callable[[str], object], *, address: str) -> None:
        self.kinds = frozenset(kinds)
        self.on_change = on_change
        self.address = address
        self.attributes = {"service": KEYRING_SERVICE, "username": KEYRING_USER}
        self._ours: frozenset[str] = frozenset()  # the Secret Service's items that hold our key
        self._pending: deque[Message] = deque()
        self._conn: DBusConnection | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, since: KeyringResult | None = None) -> KeyringSignals:
        """Subscribe, then listen on a thread; raises OSError or DBusErrorResponse when the bus refuses.

        ``since``: the keyring's answer read before this subscription. A change it does not
        hold (made between that read and now) is told at once, on the caller's thread.
        """
        conn = open_dbus_connection(self.address)
        try:
            # Every signal goes to one queue: a search's reply may arrive after signals, which
            # must wait their turn rather than be dropped.
            conn.filter(MatchRule(type="signal"), queue=self._pending)
            for rule in self._rules():
                conn.bus_proxy.AddMatch(rule)
            missed = None
            if SECRET_SERVICE_SIGNALS in self.kinds:
                self._ours = self._search(conn)
                missed = self._changed_since(conn, since)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._thread = threading.Thread(target=self._run, args=(conn,), name="keyring-signals", daemon=True)
        self._thread.start()
        if missed is not None:
            self.on_change(missed)
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        if self._conn is not None:
            try:
                # Wakes the thread's blocking read, which then finds the connection closed.
                self._conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed at the other end: the thread has ended or is ending
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._conn = None

    def _rules(self) -> list[MatchRule]:
        rules: list[MatchRule] = []
        names: list[str] = []
        if SECRET_SERVICE_SIGNALS in self.kinds:
            rules.append(MatchRule(type="signal", sender=SECRETS_NAME, interface=COLLECTION))
            rules.append(MatchRule(type="signal", sender=SECRETS_NAME, interface=SERVICE))
            locked = MatchRule(type="signal", sender=SECRETS_NAME, interface=PROPERTIES, member="PropertiesChanged")
            locked.add_arg_condition(0, COLLECTION)
            rules.append(locked)
            names.append(SECRETS_NAME)
        if KWALLET_SIGNALS in self.kinds:
            # keyring's KWallet backend keeps each service's entries in a folder named after it.
            folder = MatchRule(type="signal", interface=KWALLET, member="folderUpdated")
            folder.add_arg_condition(1, KEYRING_SERVICE)
            rules.append(folder)
            names.extend(KWALLET_NAMES)
        for name in names:
            # A keyring that starts (KeePassXC opened, a daemon restarted) may now hold a key.
            owner = MatchRule(type="signal", sender=BUS, interface=BUS, member="NameOwnerChanged")
            owner.add_arg_condition(0, name)
            rules.append(owner)
        return rules

    def _search(self, conn: DBusConnection) -> frozenset[str]:
        """The items (locked or not) whose attributes are our key's; none when no provider runs."""
        call = new_method_call(SECRETS, "SearchItems", "a{ss}", (self.attributes,))
        call.header.flags |= MessageFlag.no_auto_start  # listening never starts a keyring
        try:
            unlocked, locked = conn.send_and_get_reply(call, timeout=CALL_TIMEOUT).body
        except DBusErrorResponse:
            return frozenset()
        return frozenset(unlocked) | frozenset(locked)

    def _changed_since(self, conn: DBusConnection, since: KeyringResult | None) -> str | None:
        """What changed in the Secret Service since ``since`` was read; None when nothing did.

        Items say when they were last modified, in whole seconds: only a second wholly after
        the read's start counts, so an answer read just after a change is never taken for
        an older one (a change in the rest of that second goes unnoticed, as before).
        """
        if since is None:
            return None
        if since.problem or (since.key and not self._ours):
            return SECRETS.object_path  # unread, or our item is gone: read again
        for item in sorted(self._ours):
            get = new_method_call(DBusAddress(item, SECRETS_NAME, PROPERTIES), "Get", "ss", (ITEM, "Modified"))
            try:
                ((_signature, modified),) = conn.send_and_get_reply(get, timeout=CALL_TIMEOUT).body
            except DBusErrorResponse:
                return item  # gone meanwhile
            if modified > since.asked_at:
                return item
        return None

    def _run(self, conn: DBusConnection) -> None:
        try:
            while True:
                message = conn.recv_until_filtered(self._pending)
                what = self._concerns(conn, message)
                if what is not None:
                    self.on_change(what)
        except (OSError, EOFError, TimeoutError) as exc:
            if not self._stopping.is_set():
                log.warning("the session bus closed (%s): the keyring is read on a timer again", type(exc).__name__)
        except Exception:
            log.exception("listening to the keyring's signals failed: the keyring is read on a timer again")
        finally:
            conn.close()

    def _concerns(self, conn: DBusConnection, message: Message) -> str | None:
        """What changed, when ``message`` may mean our key changed; None when it cannot.
        For the Secret Service, which items are ours is asked again on the way."""
        fields = message.header.fields
        interface, member = fields.get(HeaderFields.interface), fields.get(HeaderFields.member)
        path: str = fields.get(HeaderFields.path, "")
        body = message.body
        if interface == BUS and member == "NameOwnerChanged":
            if body[0] == SECRETS_NAME:
                self._ours = self._search(conn)
            return str(body[0]) if body[2] else None  # a new owner: the keyring (re)started
        if interface == KWALLET and member == "folderUpdated":
            return f"{body[0]}/{body[1]}" if body[1] == KEYRING_SERVICE else None
        if interface == COLLECTION and member in ITEM_SIGNALS:
            # Created or changed: ours if its attributes are now ours; changed away or deleted:
            # ours if it was. Another program's secrets never cost a read of the keyring.
            before, self._ours = self._ours, self._search(conn)
            return str(body[0]) if body[0] in before or body[0] in self._ours else None
        if interface == SERVICE and member in ("CollectionDeleted", "CollectionChanged"):
            collection = body[0]
        elif interface == PROPERTIES and body[0] == COLLECTION and "Locked" in body[1]:
            collection = path  # unlocked: a key that could not be read may be readable now
        else:
            return None
        concerned = any(item.startswith(collection + "/") for item in self._ours)
        self._ours = self._search(conn)
        return str(collection) if concerned else None
