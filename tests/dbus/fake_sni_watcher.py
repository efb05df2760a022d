#!/usr/bin/python3
"""Fake StatusNotifierWatcher (the tray's registry) for integration tests.

Usage: fake_sni_watcher.py LOGFILE

Owns org.kde.StatusNotifierWatcher on the session bus, appends every item
registration to LOGFILE as one JSON line {"service": ..., "path": ...}, and
prints `ready` once the name is owned. It also claims a host is registered:
without one, some clients (Qt, libappindicator forks) decline to register and
fall back to an XEmbed icon. sni_dump.py reads LOGFILE to find the item.
"""
import json
import signal
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = IFACE = "org.kde.StatusNotifierWatcher"
PATH = "/StatusNotifierWatcher"
PROPS = "org.freedesktop.DBus.Properties"
DEFAULT_ITEM_PATH = "/StatusNotifierItem"


class Watcher(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, PATH)
        self.bus = bus
        self.log = log
        self.items = []  # "service/path" strings, as KDE's watcher lists them

    @dbus.service.method(IFACE, in_signature="s", out_signature="", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender):
        # The spec passes a bus name, but libayatana-appindicator passes its
        # object path (/org/ayatana/NotificationItem/<id>): the item then lives
        # on the caller's connection, so the caller's unique name is what to call.
        path = str(service) if service.startswith("/") else DEFAULT_ITEM_PATH
        entry = f"{sender}{path}"
        if entry not in self.items:
            self.items.append(entry)
            # Drop the item when its process leaves, as a real watcher does, so
            # RegisteredStatusNotifierItems never lists a dead item.
            self.bus.watch_name_owner(sender, lambda owner, e=entry: self._owner(e, owner))
        self.log.write(json.dumps({"service": str(sender), "path": path}) + "\n")
        self.log.flush()
        self.StatusNotifierItemRegistered(entry)

    def _owner(self, entry, owner):
        if not owner and entry in self.items:
            self.items.remove(entry)
            self.StatusNotifierItemUnregistered(entry)

    @dbus.service.method(IFACE, in_signature="s", out_signature="")
    def RegisterStatusNotifierHost(self, service):
        self.StatusNotifierHostRegistered()

    @dbus.service.signal(IFACE, signature="s")
    def StatusNotifierItemRegistered(self, service):
        pass

    @dbus.service.signal(IFACE, signature="s")
    def StatusNotifierItemUnregistered(self, service):
        pass

    @dbus.service.signal(IFACE, signature="")
    def StatusNotifierHostRegistered(self):
        pass

    def _props(self):
        return {"RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
                "IsStatusNotifierHostRegistered": dbus.Boolean(True),
                "ProtocolVersion": dbus.Int32(0)}

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        props = self._props()
        if interface != IFACE or prop not in props:
            raise dbus.exceptions.DBusException(
                f"no property {interface}.{prop}", name="org.freedesktop.DBus.Error.UnknownProperty")
        return props[prop]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return self._props() if interface == IFACE else dbus.Dictionary({}, signature="sv")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fake_sni_watcher.py LOGFILE")
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    watcher = Watcher(bus, open(sys.argv[1], "a", encoding="utf-8"))
    # BusName requests the name synchronously: once it returns the name is ours.
    name = dbus.service.BusName(NAME, bus, do_not_queue=True)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()
    del name, watcher


if __name__ == "__main__":
    main()
