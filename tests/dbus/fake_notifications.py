#!/usr/bin/python3
"""Fake freedesktop notification server for integration tests.

Usage: fake_notifications.py LOGFILE

Owns org.freedesktop.Notifications on the session bus, appends every Notify
call to LOGFILE as one JSON line, and prints `ready` once the name is owned.
A test "clicks" a notification action with
    gdbus call --session --dest org.freedesktop.Notifications \
      --object-path /org/freedesktop/Notifications \
      --method app.attache.TestControl.Invoke ID ACTION_KEY
which emits ActionInvoked(ID, ACTION_KEY) then NotificationClosed(ID, 2),
exactly what a real server sends when a person clicks a button.
"""
import json
import signal
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
CONTROL = "app.attache.TestControl"


def plain(value):
    """A hint as plain JSON, or None for what JSON can't carry (image-data, arrays)."""
    # dbus.Boolean subclasses int, so it must be tested before the numbers.
    if isinstance(value, dbus.Boolean):
        return bool(value)
    for kind in (str, float, int):
        if isinstance(value, kind):
            return kind(value)
    return None


class Server(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, PATH)
        self.log = log
        self.last_id = 0
        self.shown = set()  # ids not yet closed: a close is signalled once, as real servers do

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout):
        if replaces_id:
            # Keep later fresh ids clear of a replaced id we never handed out.
            nid = int(replaces_id)
            self.last_id = max(self.last_id, nid)
        else:
            self.last_id += 1
            nid = self.last_id
        self.shown.add(nid)
        hints = {str(k): plain(v) for k, v in hints.items()}
        hints = {k: v for k, v in hints.items() if v is not None}
        record = {"id": nid, "app_name": str(app_name), "summary": str(summary),
                  "body": str(body), "actions": [str(a) for a in actions],
                  "app_icon": str(app_icon), "hints": hints,
                  "expire_timeout": int(expire_timeout)}
        # Flushed per line: the test reads the file while we keep running.
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body", "persistence"]

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("attache-fake-notifications", "attache", "1.0", "1.2")

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        if nid in self.shown:
            self.shown.discard(nid)
            self.NotificationClosed(nid, 3)  # 3 = closed by a call to CloseNotification

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, action_key):
        pass

    @dbus.service.method(CONTROL, in_signature="us", out_signature="")
    def Invoke(self, nid, action_key):
        # An unknown id is a bug in the test, so it fails loudly rather than signalling.
        if nid not in self.shown:
            raise dbus.exceptions.DBusException(f"no open notification {nid}",
                                                name=CONTROL + ".UnknownId")
        self.shown.discard(nid)
        self.ActionInvoked(nid, action_key)
        self.NotificationClosed(nid, 2)  # 2 = dismissed by the user, as after a click


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fake_notifications.py LOGFILE")
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    server = Server(bus, open(sys.argv[1], "a", encoding="utf-8"))
    # BusName requests the name synchronously: once it returns the name is ours
    # (do_not_queue makes a clash an error instead of a silent wait).
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()
    del name, server


if __name__ == "__main__":
    main()
