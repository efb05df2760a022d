#!/usr/bin/python3
"""Read or click the tray item last registered with fake_sni_watcher.py.

Usage: sni_dump.py LOGFILE              print the item and its menu as JSON
       sni_dump.py LOGFILE --click LABEL click the menu entry labelled LABEL

The dump is one JSON object: "service" and "path" of the item, its
org.kde.StatusNotifierItem properties (Id, Title, Status, Category, IconName,
IconThemePath, ToolTip when the item has them; Menu as a path) and "menu", the
dbusmenu tree flattened depth first without its root, each entry
{"id", "parent", "label", "enabled", "visible", "type", "children-display"}
plus "toggle-type"/"toggle-state" when set. --click prints {"clicked": id, "at": epoch seconds}.
Exit codes: 1 no registration in LOGFILE, 2 item unreachable, 3 no such label.
"""
import argparse
import json
import re
import sys
import time

import dbus

ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"
TIMEOUT = 5  # seconds: a hung app should fail the test, not stall it for dbus's 25 s


def fail(code, message):
    print(f"sni_dump: {message}", file=sys.stderr)
    sys.exit(code)


def last_registration(logfile):
    try:
        with open(logfile, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except FileNotFoundError:
        lines = []
    if not lines:
        fail(1, f"no StatusNotifierItem registration in {logfile}")
    return json.loads(lines[-1])


def plain(value):
    """dbus-python values as plain JSON values."""
    if isinstance(value, dbus.Boolean):  # before int: Boolean subclasses int
        return bool(value)
    if isinstance(value, (dbus.Array, dbus.Struct, list, tuple)):
        return [plain(v) for v in value]
    for kind in (str, float, int):
        if isinstance(value, kind):
            return kind(value)
    return value


def flatten(node, parent, out):
    for child in node[2]:
        cid, props, _ = child
        entry = {"id": int(cid), "parent": parent,
                 "label": str(props.get("label", "")),
                 "enabled": bool(props.get("enabled", True)),
                 "visible": bool(props.get("visible", True)),
                 "type": str(props.get("type", "standard")),
                 "children-display": str(props.get("children-display", ""))}
        for key in ("toggle-type", "toggle-state"):
            if key in props:
                entry[key] = plain(props[key])
        out.append(entry)
        flatten(child, int(cid), out)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("logfile")
    parser.add_argument("--click", metavar="LABEL")
    args = parser.parse_args()
    reg = last_registration(args.logfile)
    bus = dbus.SessionBus()
    try:
        item = bus.get_object(reg["service"], reg["path"], introspect=False)
        props = item.GetAll(ITEM, dbus_interface=dbus.PROPERTIES_IFACE, timeout=TIMEOUT)
        menu_path = str(props["Menu"])
        menu = dbus.Interface(bus.get_object(reg["service"], menu_path, introspect=False), MENU)
        _revision, layout = menu.GetLayout(0, -1, dbus.Array([], signature="s"), timeout=TIMEOUT)
        entries = flatten(layout, 0, [])
        if args.click is None:
            out = {"service": reg["service"], "path": reg["path"]}
            for key in ("Id", "Title", "Status", "Category", "IconName", "IconThemePath"):
                if key in props:
                    out[key] = plain(props[key])
            if "ToolTip" in props:  # (icon name, icon pixmaps, title, description): pixmaps dropped
                icon, _pixmaps, title, description = props["ToolTip"]
                out["ToolTip"] = {"icon_name": str(icon), "title": str(title),
                                  "description": str(description)}
            out["Menu"] = menu_path
            out["menu"] = entries
            print(json.dumps(out))
            return
        # Labels carry GTK mnemonics ("_Quit"); "__" stands for a literal underscore.
        matches = [e for e in entries if re.sub(r"_(.?)", r"\1", e["label"]) == args.click]
        if not matches:
            fail(3, f"no menu entry labelled {args.click!r}; labels: "
                    + ", ".join(repr(e["label"]) for e in entries if e["type"] != "separator"))
        target = matches[0]["id"]
        # What a panel sends on a click: data is an unused int32 0, then the event time.
        # "at": when the click was sent (s since the epoch), for timing what it does.
        at = time.time()
        menu.Event(dbus.Int32(target), "clicked", dbus.Int32(0, variant_level=1),
                   dbus.UInt32(int(at) & 0xFFFFFFFF), timeout=TIMEOUT)
        print(json.dumps({"clicked": target, "at": at}))
    except dbus.exceptions.DBusException as e:
        fail(2, f"item {reg['service']} {reg['path']} unreachable: {e.get_dbus_name()}: {e.get_dbus_message()}")


if __name__ == "__main__":
    main()
